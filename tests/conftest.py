"""Fixtures shared by every test folder: a real bridge process and a workspace."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BridgeProcess, fixture_catalog, kill_leftovers


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workspace")
    (path / "app.py").write_text("class Greeter:\n    pass\n")
    return path


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    data = tmp_path_factory.mktemp("bridge")
    catalog = fixture_catalog(data / "catalog.toml")
    proc = BridgeProcess(data / "data", env={"PARADISE_CATALOG": str(catalog)}).start()
    yield proc
    with contextlib.suppress(Exception):
        for client in proc.api("GET", "/clients").json():
            proc.api("DELETE", f"/clients/{client['client_id']}")
    proc.kill(signal.SIGTERM)
    kill_leftovers(proc.data_dir)
