"""Retries only when safe (issue 26.3), on both protocol eras: a call whose instance dies under it is sent to
the healed instance only when a second run cannot do harm (a read-only method, or a tool annotated
readOnlyHint/idempotentHint, learned from tools/list); a tool that writes runs at most once and the client is
told the call may have run. The whole bridge in-process (tests/inprocess/), real SDK server instances whose
tools kill their own launch mid-call, the official SDK client."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from mcp.shared.exceptions import MCPError

from bridge.proxy.resend import RESTARTED_CODE
from tests.helpers import mcp_client
from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess
CALL_BOUND = 60.0  # a bound on each call (a lost answer must fail the test, not hang it), not a timing claim


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # 2026-07-28 sessionless, and a session-era client
async def test_a_writing_tool_cut_by_a_crash_runs_once_and_the_client_is_told(
    bridge: InProcessBridge, workspace, mode: str
) -> None:
    client_id = f"writer-{mode}"
    token = bridge.register(client_id, workspace, ["echo"])["token"]
    name = f"lines-{uuid.uuid4().hex[:8]}.txt"
    async with mcp_client(bridge.mcp_url(client_id, "echo"), token, read_timeout=CALL_BOUND, mode=mode) as client:
        await client.list_tools()  # the bridge learns the annotations here (append_then_die has none)
        before = (await client.call_tool("whoami", {})).structured_content["boot"]
        with pytest.raises(MCPError) as raised:
            await asyncio.wait_for(client.call_tool("append_then_die", {"name": name, "line": "ran"}), CALL_BOUND)
        assert raised.value.error.code == RESTARTED_CODE and "may have run" in raised.value.error.message
        after = (await asyncio.wait_for(client.call_tool("whoami", {}), CALL_BOUND)).structured_content["boot"]
    assert after != before  # the instance did die and was healed
    assert (workspace / name).read_text() == "ran\n"  # once: never sent again to the healed instance


@pytest.mark.parametrize(("mode", "tool"), [("auto", "read_dying"), ("legacy", "idempotent_dying")])
async def test_a_safe_tool_cut_by_a_crash_is_answered_by_the_healed_instance(
    bridge: InProcessBridge, workspace, mode: str, tool: str
) -> None:
    client_id = f"reader-{mode}-{tool.split('_')[0]}"
    token = bridge.register(client_id, workspace, ["echo"])["token"]
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    async with mcp_client(bridge.mcp_url(client_id, "echo"), token, read_timeout=CALL_BOUND, mode=mode) as client:
        assert tool in {t.name for t in (await client.list_tools()).tools}
        before = (await client.call_tool("whoami", {})).structured_content["boot"]
        result = await asyncio.wait_for(client.call_tool(tool, {"name": marker}), CALL_BOUND)
    assert not result.is_error, result
    assert result.structured_content["boot"] != before  # answered by the healed instance, not lost
    assert (workspace / marker).exists()
