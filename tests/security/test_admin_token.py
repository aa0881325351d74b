"""The admin token can never be empty or short: refused in the environment, replaced in the file (real bridge)."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from bridge.settings import MIN_ADMIN_TOKEN
from tests.helpers import PYTHON, ROOT, BridgeProcess, kill_leftovers


def serve_until_exit(proc: BridgeProcess) -> subprocess.CompletedProcess[str]:
    """``python -m bridge serve`` that is expected to stop at start-up (bounded)."""
    proc.data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [PYTHON, "-m", "bridge", "serve"], env=proc.env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def admin_status(proc: BridgeProcess, header: str) -> int:
    """GET /api/v1/clients with this exact Authorization value (raw: httpx refuses trailing blanks)."""
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/v1/clients HTTP/1.1\r\nHost: 127.0.0.1:{proc.port}\r\nAuthorization: {header}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize("token", ["", "   ", "x" * (MIN_ADMIN_TOKEN - 1)])
def test_an_empty_or_short_admin_token_stops_the_bridge_with_one_line(tmp_path: Path, token: str) -> None:
    proc = BridgeProcess(tmp_path / "data", env={"PARADISE_ADMIN_TOKEN": token})
    done = serve_until_exit(proc)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "PARADISE_ADMIN_TOKEN: must be at least 16 characters" in lines[0]
    assert token.strip() == "" or token not in lines[0]  # the refused secret is not echoed


@pytest.mark.parametrize("content", ["", "\n", "short\n"])
def test_an_empty_token_file_left_by_a_crash_is_replaced(tmp_path: Path, content: str) -> None:
    proc = BridgeProcess(tmp_path / "data")
    del proc.env["PARADISE_ADMIN_TOKEN"]  # the file is the only source
    proc.data_dir.mkdir(parents=True)
    token_file = proc.data_dir / "admin-token"
    token_file.write_text(content)
    token_file.chmod(0o644)
    proc.start()
    try:
        token = token_file.read_text().strip()
        assert len(token) >= 40 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        for header in ("Bearer ", "Bearer", f"Bearer {content.strip()}", "Bearer  "):
            assert admin_status(proc, header) == 401, header
        assert admin_status(proc, f"Bearer {token}") == 200
        assert "held an empty or short token; replaced it" in proc.log.read_text()
        assert not list(proc.data_dir.glob(".admin-token.*"))  # no temp file left behind
    finally:
        proc.kill(signal.SIGTERM)
        kill_leftovers(proc.data_dir)


def test_a_symlink_planted_as_the_token_file_is_refused(tmp_path: Path) -> None:
    proc = BridgeProcess(tmp_path / "data")
    del proc.env["PARADISE_ADMIN_TOKEN"]
    proc.data_dir.mkdir(parents=True)
    known = tmp_path / "attacker-known-token"
    known.write_text("attacker-chosen-admin-token\n")
    (proc.data_dir / "admin-token").symlink_to(known)
    done = serve_until_exit(proc)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "admin-token is a symlink; refusing to use it" in done.stderr and "Traceback" not in done.stderr
    assert known.read_text() == "attacker-chosen-admin-token\n"  # nothing was written through it
