"""Workspace roots setup may add (bridge/cli/roots.py) and the ones the bridge reads back (bridge/workspaces.py):
a directory the user owns outside the home gets in; ``/``, system and shared directories, the data dir and
other users' directories stay out, whatever the roots file says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bridge.cli.roots as roots_cli
import bridge.settings as settings_module
import bridge.workspaces as workspaces
from bridge.cli.common import CliError
from bridge.settings import bridge_user_home, default_workspace_roots
from bridge.workspaces import ROOTS_FILE, added_roots


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PARADISE_WORKSPACE_ROOTS", raising=False)
    monkeypatch.setenv("HOME", str(bridge_user_home()))
    data = tmp_path / "data"
    data.mkdir()
    return data


def test_a_project_you_own_outside_the_home_is_added_once(state: Path, tmp_path: Path) -> None:
    shop = tmp_path / "srv" / "shop"
    (shop / "src").mkdir(parents=True)
    path, added = roots_cli.add_root(shop, state)
    assert (path, added) == (shop.resolve(), True)
    assert (state / ROOTS_FILE).read_text() == f"{shop.resolve()}\n"
    assert oct((state / ROOTS_FILE).stat().st_mode & 0o777) == "0o600"
    assert roots_cli.add_root(shop, state) == (shop.resolve(), False)  # already a root
    assert roots_cli.add_root(shop / "src", state) == ((shop / "src").resolve(), False)  # under one
    assert added_roots(state) == [shop.resolve()]


@pytest.mark.parametrize(
    ("target", "words"),
    [("/", "root of the file system"), ("/etc", "system directory"), ("/tmp", "shared system directory"),
     ("/usr/lib", "system directory")],
)
def test_system_and_shared_directories_are_never_added(state: Path, target: str, words: str) -> None:
    if os.stat(target).st_uid != os.getuid():
        pytest.skip(f"{target} is not this user's (refused for that reason first)")
    with pytest.raises(CliError, match=words):
        roots_cli.add_root(target, state)
    assert not (state / ROOTS_FILE).exists()


def test_the_whole_home_and_the_data_dir_are_not_roots(state: Path, tmp_path: Path) -> None:
    with pytest.raises(CliError, match="overlaps the bridge's data dir"):
        roots_cli.add_root(state, state)
    with pytest.raises(CliError, match="overlaps the bridge's data dir"):
        roots_cli.add_root(tmp_path, state)  # it holds the data dir


def test_another_users_directory_is_not_added(state: Path, tmp_path: Path, monkeypatch) -> None:
    theirs = tmp_path / "bob-project"
    theirs.mkdir()
    monkeypatch.setattr(roots_cli.os, "getuid", lambda: os.stat(theirs).st_uid + 1)
    with pytest.raises(CliError, match=r"belongs to uid \d+, not to you"):
        roots_cli.add_root(theirs, state)


def test_the_bridge_ignores_entries_it_cannot_trust(state: Path, tmp_path: Path, monkeypatch) -> None:
    good, gone, plain = tmp_path / "good", tmp_path / "gone", tmp_path / "file"
    good.mkdir()
    plain.write_text("")
    (state / ROOTS_FILE).write_text(f"# a comment\n\nrelative/dir\n/\n{gone}\n{plain}\n{good}\n")
    assert added_roots(state) == [good.resolve()]
    monkeypatch.setattr(workspaces.os, "getuid", lambda: os.stat(good).st_uid + 1)  # given away since
    assert added_roots(state) == []


def test_a_link_in_the_roots_file_counts_as_where_it_leads(state: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (state / ROOTS_FILE).write_text(f"{tmp_path / 'link'}\n")
    assert added_roots(state) == [real.resolve()]


def test_home_from_the_environment_counts_beside_the_passwd_home(tmp_path: Path, monkeypatch) -> None:
    elsewhere = tmp_path / "ci-home"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(elsewhere))
    assert default_workspace_roots() == [str(bridge_user_home()), str(elsewhere)]
    monkeypatch.setattr(settings_module.os, "getuid", lambda: os.stat(elsewhere).st_uid + 1)
    assert default_workspace_roots() == [str(bridge_user_home())]  # a HOME someone else owns is not ours
    monkeypatch.setenv("HOME", str(bridge_user_home()))
    assert default_workspace_roots() == [str(bridge_user_home())]
