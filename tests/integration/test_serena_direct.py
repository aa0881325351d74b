"""A real Serena instance, started through ``python -m instances.serena`` and queried over MCP.

Installs Serena once into a cache directory (``PARADISE_SERENA_VENV`` or
``~/.cache/devops-paradise/serena-venv``); later runs reuse it. Only loopback traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from mcp import Client

from bridge.host.serena_install import SERENA_VERSION, install_serena, serena_installed
from tests.helpers import serena_venv_path, write_geometry_workspace

pytestmark = [pytest.mark.serena, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def serena_venv() -> Path:
    venv = serena_venv_path()
    install_serena(venv, progress=lambda line: print(f"[serena install] {line}"))
    return venv


@pytest.fixture
def sample_workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "client workspace"
    write_geometry_workspace(workspace)
    return workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for_port(proc: subprocess.Popen, port: int, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Serena exited with {proc.returncode}:\n{log_file.read_text()[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"Serena did not listen on {port} within {START_TIMEOUT}s:\n{log_file.read_text()[-4000:]}")


def living(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive


@pytest.fixture
def serena_process(serena_venv: Path, sample_workspace: Path, tmp_path: Path) -> Iterator[tuple]:
    port = free_port()
    log_file = tmp_path / "serena.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with log_file.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "instances.serena", "--venv", str(serena_venv), "--host", "127.0.0.1",
             "--port", str(port), "--workspace", str(sample_workspace), "--home", str(tmp_path / "home"),
             "--log-dir", str(tmp_path / "logs")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    seen: list[int] = [proc.pid]
    try:
        yield proc, port, log_file, seen
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            seen.extend(child.pid for child in psutil.Process(proc.pid).children(recursive=True))
        for pid in living(seen):  # a failed test must not leak a language server
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        proc.wait(10)


def test_install_is_idempotent(serena_venv: Path) -> None:
    messages: list[str] = []
    started = time.monotonic()
    install_serena(serena_venv, progress=messages.append)
    assert serena_installed(serena_venv)
    assert messages == [f"Serena {SERENA_VERSION} already installed in {serena_venv.absolute()}"]
    assert time.monotonic() - started < 5


async def test_find_symbol_finds_the_class_and_nothing_is_left_behind(
    serena_process: tuple, sample_workspace: Path, tmp_path: Path
) -> None:
    proc, port, log_file, seen = serena_process
    started = time.monotonic()
    await wait_for_port(proc, port, log_file)

    async with Client(f"http://127.0.0.1:{port}/mcp") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"find_symbol", "get_symbols_overview", "find_referencing_symbols"} <= tools
        result = await asyncio.wait_for(
            client.call_tool("find_symbol", {"name_path_pattern": "Circle", "depth": 1}), timeout=120
        )
    elapsed = time.monotonic() - started

    text = "".join(getattr(part, "text", "") for part in result.content)
    assert not result.is_error, text
    symbols = json.loads(text)
    assert [(s["name_path"], s["kind"], s["relative_path"]) for s in symbols] == [
        ("Circle", "Class", "geometry/shapes.py")
    ]
    assert {m["name"] for m in symbols[0]["children"]["Method"]} == {"__init__", "area"}
    print(f"first find_symbol answered {elapsed:.2f}s after start")

    tree = psutil.Process(proc.pid).children(recursive=True)
    seen.extend(child.pid for child in tree)
    assert any("langserver" in " ".join(child.cmdline()) for child in tree), "no language server child"

    # Serena's project data stays in the instance home, not in the client's workspace
    assert not (sample_workspace / ".serena").exists()
    assert (tmp_path / "home" / ".serena" / "workspaces" / sample_workspace.name / "project.yml").is_file()
    assert list((tmp_path / "logs").rglob("mcp_*.txt")), "Serena's log file is not in the instance log dir"

    proc.terminate()
    proc.wait(20)
    deadline = time.monotonic() + 10
    while living(seen) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert living(seen) == [], [psutil.Process(pid).cmdline() for pid in living(seen)]
