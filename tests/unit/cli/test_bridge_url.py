"""How the CLI finds the bridge: PARADISE_URL, else PARADISE_HOST/PARADISE_PORT, else the running bridge's
record in the data dir, else the default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.cli.common import RUNNING_RECORD, bridge_url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("PARADISE_URL", "PARADISE_HOST", "PARADISE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARADISE_DATA_DIR", str(tmp_path))
    return monkeypatch


def test_url_wins_then_host_and_port(env: pytest.MonkeyPatch) -> None:
    env.setenv("PARADISE_PORT", "9911")
    assert bridge_url() == "http://127.0.0.1:9911"
    env.setenv("PARADISE_HOST", "::1")
    assert bridge_url() == "http://[::1]:9911"
    env.setenv("PARADISE_URL", "http://127.0.0.1:7000/")
    assert bridge_url() == "http://127.0.0.1:7000"


def test_the_running_bridges_record_is_used_when_nothing_is_set(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert bridge_url() == "http://127.0.0.1:8100"
    (tmp_path / RUNNING_RECORD).write_text(json.dumps({"url": "http://127.0.0.1:8123", "pid": 1}))
    assert bridge_url() == "http://127.0.0.1:8123"
    env.setenv("PARADISE_PORT", "8200")  # what the user says beats the record
    assert bridge_url() == "http://127.0.0.1:8200"


def test_a_broken_record_is_ignored(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / RUNNING_RECORD).write_text("{not json")
    assert bridge_url() == "http://127.0.0.1:8100"
    (tmp_path / RUNNING_RECORD).write_text(json.dumps({"url": "file:///etc/passwd"}))
    assert bridge_url() == "http://127.0.0.1:8100"
