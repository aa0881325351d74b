"""The app under test, started for real: ready when its URL answers, and its whole process group
(a child it spawned too) gone afterwards; a never-ready app is stopped at the deadline."""

from __future__ import annotations

import os
import shlex
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from instances.quality.app.appserver import app_under_test
from instances.quality.core.errors import QualityError
from instances.quality.core.workspace import Workspace


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running(marker: str) -> list[int]:
    """Pids whose command line carries `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _running(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


async def test_app_is_ready_then_stopped_with_its_children(tmp_path: Path) -> None:
    port, marker = _free_port(), f"paradise-test-{uuid.uuid4().hex}"
    # the app starts a child that would outlive a plain kill of the leader
    (tmp_path / "app.py").write_text(
        "import subprocess, sys, http.server\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', '{marker}-child'])\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n",
        encoding="utf-8",
    )
    command = f"{shlex.quote(sys.executable)} app.py {marker}"
    async with app_under_test(Workspace.open(tmp_path), command, f"http://127.0.0.1:{port}/", 30) as app:
        assert app["ready_after_s"] is not None and app["ready_after_s"] < 30
        assert len(_running(marker)) == 2  # the app and its child
        assert os.getpgid(app["pid"]) == app["pid"]  # its own process group
    assert _wait_gone(marker) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


async def test_an_app_that_never_answers_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    marker = f"paradise-test-{uuid.uuid4().hex}"
    command = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(600)' {marker}"
    started = time.monotonic()
    with pytest.raises(QualityError) as info:
        async with app_under_test(Workspace.open(tmp_path), command, f"http://127.0.0.1:{_free_port()}/", 2):
            pass
    assert info.value.code == "app_not_ready"
    assert time.monotonic() - started < 15
    assert _wait_gone(marker) == []
