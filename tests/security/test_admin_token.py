"""An empty or short admin token file left by a crash is replaced at start-up (the whole bridge in-process,
tests/inprocess/). Refused tokens and a planted symlink stop a real process: test_admin_token_startup.py."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess


def admin_status(proc: InProcessBridge, header: str) -> int:
    """GET /api/v1/clients with this exact Authorization value (raw: httpx refuses trailing blanks)."""
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/v1/clients HTTP/1.1\r\nHost: 127.0.0.1:{proc.port}\r\nAuthorization: {header}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize("content", ["", "\n", "short\n"])
def test_an_empty_token_file_left_by_a_crash_is_replaced(tmp_path: Path, content: str) -> None:
    proc = InProcessBridge(tmp_path / "data")
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
        proc.stop()
