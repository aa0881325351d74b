"""Where the quality instance writes (datadir.py): the workspace's ignored .paradise/, else its own state."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from instances.quality.core import datadir
from instances.quality.core.workspace import Workspace


def test_a_writable_workspace_gets_an_ignored_paradise_dir(tmp_path: Path) -> None:
    assert datadir.data_dir(Workspace.open(tmp_path)) == tmp_path / ".paradise"
    assert (tmp_path / ".paradise" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_an_unwritable_workspace_uses_the_container_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / ".paradise").write_text("not a directory")  # as unusable as a read-only mount
    monkeypatch.delenv(datadir.STATE_ENV, raising=False)
    monkeypatch.setattr(datadir, "CONTAINER_STATE", tmp_path / "state")
    (tmp_path / "state").mkdir()
    found = datadir.data_dir(Workspace.open(tmp_path / "ws"))
    assert found.parent == tmp_path / "state" and found.name.startswith("ws-") and found.is_dir()


def test_a_permission_problem_is_a_structured_error_with_path_and_fix() -> None:
    error = datadir.permission_error(PermissionError(errno.EACCES, "Permission denied", "/workspace/.paradise"))
    assert error["code"] == "not_writable" and error["path"] == "/workspace/.paradise"
    assert "Permission denied" in error["message"] and "/state" in error["fix"]


async def test_no_tool_answers_internal_error_for_a_permission_problem() -> None:
    from instances.quality.server.server import invoke_tool

    async def work(*, progress: object) -> dict:
        raise PermissionError(errno.EACCES, "Permission denied", "/workspace/.paradise")

    reply = await invoke_tool("run_performance", None, 1, work)
    error = reply.structured_content["error"]
    assert reply.is_error and error["code"] == "not_writable" and error["path"] == "/workspace/.paradise"
