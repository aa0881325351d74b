"""Fixtures shared by every test folder: a real bridge process and a workspace."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BridgeProcess, fixture_bridge, serving

# Tests make their workspaces in the temp dir, so every bridge they build or start accepts workspaces there
# (the default root, the user's home, would refuse them); the tests of the roots themselves set their own.
os.environ.setdefault("PARADISE_WORKSPACE_ROOTS", str(Path(tempfile.gettempdir()).resolve()))
# Most tests register several clients on the module's one workspace; the tests of the overlap rule (409) set
# PARADISE_SHARED_WORKSPACES=false on their own bridge.
os.environ.setdefault("PARADISE_SHARED_WORKSPACES", "true")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workspace")
    (path / "app.py").write_text("class Greeter:\n    pass\n")
    return path


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    with serving(fixture_bridge(tmp_path_factory.mktemp("bridge"))) as proc:
        yield proc
