"""Fixtures shared by every test folder: a bridge (a real process, or in this process) and a workspace."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BridgeClient, fixture_bridge, serving
from tests.inprocess import inprocess_bridge, serving_inprocess

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
def bridge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeClient]:
    """The module's bridge on the fixture catalog: a real ``bridge serve`` process, or, in a module marked
    ``inprocess``, the whole app in this process over in-process MCP servers (tests/inprocess/)."""
    base = tmp_path_factory.mktemp("bridge")
    if request.node.get_closest_marker("inprocess"):
        with serving_inprocess(inprocess_bridge(base)) as app:
            yield app
        return
    with serving(fixture_bridge(base)) as proc:
        yield proc
