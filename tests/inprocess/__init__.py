"""The whole bridge in the test process over in-process MCP servers (bridge.py, runtime.py)."""

from tests.inprocess.bridge import InProcessBridge, inprocess_bridge, serving_inprocess
from tests.inprocess.runtime import McpRuntime

__all__ = ["InProcessBridge", "McpRuntime", "inprocess_bridge", "serving_inprocess"]
