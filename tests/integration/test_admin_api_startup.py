"""Invalid settings stop ``bridge serve`` at start-up with one line (a real process: its exit code and stderr)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PARADISE_PORT_RANGE": "9000"}, "PARADISE_PORT_RANGE"),
        ({"PARADISE_PORT_RANGE": "9100-9000"}, "PARADISE_PORT_RANGE"),
        ({"PARADISE_PORT": "70000"}, "PARADISE_PORT"),
        ({"PARADISE_DATA_DIR": "/proc/paradise"}, "PARADISE_DATA_DIR"),
        ({"PARADISE_RUNTIME": "kubernetes"}, "PARADISE_RUNTIME"),
    ],
)
def test_invalid_settings_stop_startup_with_one_line(env: dict, words: str, tmp_path) -> None:
    base = {**os.environ, "PARADISE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "serve"], env=base | env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in result.stderr
