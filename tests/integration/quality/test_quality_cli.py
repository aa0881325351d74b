"""The entrypoint refuses bad start-up input with a message and exit code 2 instead of a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "instances.quality", "--port", str(free_port()), *args]
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env)


def test_missing_workspace_directory(tmp_path: Path) -> None:
    done = _start("--workspace", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: workspace {tmp_path / 'nope'} is not a directory"


def test_no_workspace_given_at_all() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PARADISE_WORKSPACE"}
    done = _start(env=env)
    assert done.returncode == 2
    assert "no workspace: pass --workspace DIR or set PARADISE_WORKSPACE" in done.stderr


def test_invalid_profiles_file(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('[profiles.x]\ntools = ["tests", "deploy"]\n')
    done = _start("--workspace", str(tmp_path), "--profiles", str(profiles))
    assert done.returncode == 2
    assert "profiles.x.tools has unknown ['deploy']" in done.stderr


def test_unknown_default_profile(tmp_path: Path) -> None:
    done = _start("--workspace", str(tmp_path), "--profile", "nightly")
    assert done.returncode == 2
    assert "unknown profile 'nightly'; known: ['comprehensive', 'python', 'quick', 'web']" in done.stderr
