"""Workspace paths the file system itself refuses are a 422 with the reason, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import Invalid
from bridge.settings import BridgeSettings
from bridge.workspaces import resolve_workspace


def test_a_name_too_long_is_refused_with_the_reason(tmp_path: Path) -> None:
    settings = BridgeSettings(data_dir=tmp_path / "data", workspace_roots=str(tmp_path))
    with pytest.raises(Invalid, match="cannot be used: File name too long"):
        resolve_workspace(str(tmp_path / ("x" * 300)), settings)


def test_an_unknown_users_home_is_refused(tmp_path: Path) -> None:
    settings = BridgeSettings(data_dir=tmp_path / "data", workspace_roots=str(tmp_path))
    with pytest.raises(Invalid, match="cannot be used"):
        resolve_workspace("~no-such-user-4711/project", settings)
