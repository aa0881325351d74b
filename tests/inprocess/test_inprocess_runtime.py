"""The in-process runtime keeps its promises (runtime.py): a launch is the real fixture MCP server on the leased
port, a kill cuts it as SIGKILL would, the fixture modes behave as the fixture server's process does, and an
instance gets the process runtime's environment, never the bridge's. Driven directly, without a bridge."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from bridge.runtime.base import InstanceSpec
from tests.helpers import free_block, mcp_client
from tests.inprocess import McpRuntime

pytestmark = pytest.mark.inprocess


def spec(tmp_path: Path, mode: str, port: int | None = None) -> InstanceSpec:
    port = port or free_block(1)
    command = [sys.executable, "-m", "tests.fixtures.mcp_server", "--port", str(port), "--mode", mode]
    return InstanceSpec(client_id="ada", service="echo", port=port, workspace=tmp_path,
                        instance_dir=tmp_path / "instance", command=command)  # fmt: skip


async def test_a_kill_closes_the_port_and_cuts_the_call_in_flight(tmp_path: Path) -> None:
    runtime = McpRuntime()
    launched = spec(tmp_path, "normal")
    state = await runtime.start(launched)
    url = f"http://127.0.0.1:{launched.port}/mcp"
    try:
        async with mcp_client(url, None, read_timeout=30) as client:
            under_way = asyncio.Event()

            async def progressed(*_args: object) -> None:
                under_way.set()

            arguments = {"steps": 100, "delay": 0.1}  # 10 s of work unless cut
            call = asyncio.create_task(client.call_tool("count", arguments, progress_callback=progressed))
            await asyncio.wait_for(under_way.wait(), 20)  # its first progress event came: the call runs
            await runtime.kill("ada", "echo")
            with pytest.raises(Exception):  # noqa: B017 - the SDK reports a cut connection in several ways
                await asyncio.wait_for(call, 20)
        assert (await runtime.poll(state)).exit_code == 137
        with pytest.raises(httpx.ConnectError):
            httpx.post(url, json={}, timeout=5)
    finally:
        await runtime.close()


async def test_the_fixture_modes_behave_as_the_fixture_process(tmp_path: Path) -> None:
    runtime = McpRuntime()
    try:
        crashed = await runtime.start(spec(tmp_path, "crash"))
        assert (await runtime.poll(crashed)).exit_code == 3
        assert "crashing on purpose" in await runtime.logs(crashed)
        hung = spec(tmp_path, "never-ready")
        await runtime.start(hung)
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ReadTimeout):  # accepted, never answered
                await http.post(f"http://127.0.0.1:{hung.port}/mcp", json={}, timeout=0.5)
    finally:
        await runtime.close()


async def test_an_instance_gets_the_process_runtimes_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", "the-bridge-admin-token")  # the bridge's own: never passed on
    runtime = McpRuntime()
    launched = spec(tmp_path, "normal")
    await runtime.start(launched)
    try:
        async with mcp_client(f"http://127.0.0.1:{launched.port}/mcp", None) as client:
            who = (await client.call_tool("whoami", {})).structured_content
        assert (who["client"], who["service"], who["workspace"]) == ("ada", "echo", str(tmp_path))
        assert who["leaked_admin_token"] == ""
    finally:
        await runtime.close()
