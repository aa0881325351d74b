"""The admin token can never be empty or short, nor a planted symlink: ``bridge serve`` refuses to start with
one line (a real process: its exit code and stderr). The file replaced at start-up: test_admin_token.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bridge.settings import MIN_ADMIN_TOKEN
from tests.helpers import PYTHON, ROOT, BridgeProcess


def serve_until_exit(proc: BridgeProcess) -> subprocess.CompletedProcess[str]:
    """``python -m bridge serve`` that is expected to stop at start-up (bounded)."""
    proc.data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [PYTHON, "-m", "bridge", "serve"], env=proc.env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("token", ["", "   ", "x" * (MIN_ADMIN_TOKEN - 1)])
def test_an_empty_or_short_admin_token_stops_the_bridge_with_one_line(tmp_path: Path, token: str) -> None:
    proc = BridgeProcess(tmp_path / "data", env={"PARADISE_ADMIN_TOKEN": token})
    done = serve_until_exit(proc)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "PARADISE_ADMIN_TOKEN: must be at least 16 characters" in lines[0]
    assert token.strip() == "" or token not in lines[0]  # the refused secret is not echoed


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
