"""Fixtures: sample workspaces in a temp dir and one real quality server (subprocess on a free
127.0.0.1 port) per workspace, all started at once; `call_tool` talks to them with the MCP SDK Client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from quality_workspaces import build_all

REPO_ROOT = Path(__file__).resolve().parents[3]
HANG_PROFILES = """
[defaults.timeouts]
tests = 15  # pytest start-up with the venv's plugins (hypothesis) takes seconds on a busy machine

[profiles.python]
tools = ["tests"]
coverage = true
"""


@dataclass
class RunningServer:
    name: str
    workspace: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(name: str, workspace: Path, logs: Path, extra: list[str] | None = None) -> RunningServer:
    port = free_port()
    log = logs / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "instances.quality",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workspace",
                str(workspace),
                *(extra or []),
            ],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return RunningServer(name, workspace, port, proc, log)


def wait_ready(server: RunningServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} server exited: {server.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} server did not start: {server.log.read_text()[-2000:]}")


@contextmanager
def serve_all(
    workspaces: dict[str, tuple[Path, list[str] | None]], logs: Path, ready_within: float
) -> Iterator[dict[str, RunningServer]]:
    """Start one server per (workspace, extra args), all at once, and stop every one of them after."""
    servers: dict[str, RunningServer] = {}
    try:
        for name, (path, extra) in workspaces.items():
            servers[name] = start_server(name, path, logs, extra)
        deadline = time.monotonic() + ready_within
        for server in servers.values():
            wait_ready(server, deadline)
        yield servers
    finally:
        for server in servers.values():
            server.proc.terminate()
        for server in servers.values():
            try:
                server.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.proc.kill()


def tool_caller(servers: dict[str, RunningServer], read_timeout: float):
    """await call(name, tool, {...}) -> (CallToolResult, progress notifications)."""

    async def call(name: str, tool: str, args: dict[str, Any] | None = None) -> tuple[Any, list[tuple]]:
        progress: list[tuple] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        async with Client(servers[name].url, read_timeout_seconds=read_timeout) as client:
            result = await client.call_tool(tool, args or {}, progress_callback=on_progress)
        return result, progress

    return call


@pytest.fixture(scope="session")
def quality_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    base = tmp_path_factory.mktemp("quality-ws")
    logs = tmp_path_factory.mktemp("quality-logs")
    spaces = build_all(base)
    hang_profiles = base / "hang-profiles.toml"
    hang_profiles.write_text(HANG_PROFILES, encoding="utf-8")
    extras = {"hanging": ["--profiles", str(hang_profiles)], "failing": ["--profile", "comprehensive"]}
    workspaces = {name: (path, extras.get(name)) for name, path in spaces.items()}
    with serve_all(workspaces, logs, ready_within=60) as servers:
        yield servers


@pytest.fixture(scope="session")
def call_tool(quality_servers: dict[str, RunningServer]):
    """await call_tool("passing", "run_tests", {...}) -> (CallToolResult, progress notifications)."""
    return tool_caller(quality_servers, read_timeout=120)


@pytest.fixture(scope="session")
def js_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    """One quality server per JavaScript sample workspace (js_workspaces.py)."""
    from js_workspaces import build_js, require_node_toolchain

    require_node_toolchain()
    base = tmp_path_factory.mktemp("quality-js")
    logs = tmp_path_factory.mktemp("quality-js-logs")
    workspaces = {
        name: (path, ["--profiles", str(path / "profiles.toml")] if (path / "profiles.toml").is_file() else None)
        for name, path in build_js(base).items()
    }
    # a dozen servers importing the MCP stack at once on two cores: allow for a busy machine
    with serve_all(workspaces, logs, ready_within=180) as servers:
        yield servers


@pytest.fixture(scope="session")
def js_call(js_servers: dict[str, RunningServer]):
    """await js_call("jest", "run_tests", {...}) -> (CallToolResult, progress notifications)."""
    return tool_caller(js_servers, read_timeout=300)
