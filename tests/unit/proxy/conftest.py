"""The SDK servers the proxy's tests run against are the MCP client tests' own (tests/unit/mcp/conftest.py)."""

from tests.unit.mcp.conftest import sdk_server as sdk_server

__all__ = ["sdk_server"]
