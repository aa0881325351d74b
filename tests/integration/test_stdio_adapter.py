"""The stdio adapter on its own (instances/stdio_adapter.py): a stdio MCP server served over Streamable HTTP,
answering only requests with the instance key (as the built-ins, via instances/keyguard.py), the key kept
out of the server's environment, and the adapter gone when its server dies (so the bridge heals it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import psutil
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import ROOT, free_block

KEY = "adapter-test-key-0123456789"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "t", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@contextlib.contextmanager
def running_adapter(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_block(1)
    env = {**os.environ, "PARADISE_INSTANCE_KEY": KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "instances.stdio_adapter", "--port", str(port), "--cwd", str(ROOT), "--",
         sys.executable, "-m", "tests.fixtures.stdio_server"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "adapter.log").open("wb"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    assert proc.poll() is None, (tmp_path / "adapter.log").read_text()
    try:
        yield proc, port
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []:
            child.kill()
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, int]]:
    with running_adapter(tmp_path_factory.mktemp("adapter")) as running:
        yield running


def test_requests_without_the_instance_key_are_refused(adapter) -> None:
    _, port = adapter
    url = f"http://127.0.0.1:{port}/mcp"
    missing = httpx.post(url, json=INITIALIZE, headers=HEADERS, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "instance_key_missing"
    wrong = httpx.post(url, json=INITIALIZE, headers={**HEADERS, "X-Paradise-Instance-Key": KEY + "x"}, timeout=10)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "instance_key_invalid"
    right = httpx.post(url, json=INITIALIZE, headers={**HEADERS, "X-Paradise-Instance-Key": KEY}, timeout=10)
    assert right.status_code == 200, right.text


async def _session(port: int) -> dict:
    async with (
        httpx2.AsyncClient(headers={"X-Paradise-Instance-Key": KEY}, timeout=30) as http,
        Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http), mode="legacy") as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        total = await client.call_tool("add", {"a": 2, "b": 3})
        leaked = await client.call_tool("saw_key", {})
        note = await client.read_resource("note://hello")
        prompt = await client.get_prompt("greet", {"name": "Ada"})
        pid = await client.call_tool("pid", {})
    return {"tools": tools, "total": total.content[0].text, "leaked": leaked.content[0].text,
            "note": note.contents[0].text, "prompt": prompt.messages[0].content.text, "pid": int(pid.content[0].text)}


def test_the_stdio_server_is_served_whole_and_never_sees_the_key(adapter) -> None:
    _, port = adapter
    seen = asyncio.run(_session(port))
    assert {"add", "pid", "saw_key"} <= seen["tools"]
    assert seen["total"] == "5" and seen["leaked"] == "false"
    assert seen["note"] == "hello from stdio" and seen["prompt"] == "Say hello to Ada."


def test_the_adapter_exits_when_its_server_dies(tmp_path: Path) -> None:
    with running_adapter(tmp_path) as (proc, port):
        child = psutil.Process(asyncio.run(_session(port))["pid"])
        assert child.ppid() == proc.pid
        child.kill()
        assert proc.wait(60) != 0  # the watchdog's ping fails within its interval and timeout
