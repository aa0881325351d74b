"""Who can read a workspace: mode bits, parent directories and real POSIX ACLs written with setfacl."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.runtime.access import (
    EXECUTE,
    GROUP,
    GROUP_OBJ,
    MASK,
    OTHER,
    READ,
    USER,
    USER_OBJ,
    AclEntry,
    Who,
    has_content,
    parse_acl,
    permits,
    read_acl,
    unreadable_workspace,
    user_of,
)
from bridge.runtime.base import InstanceSpec, RuntimeOperationError
from bridge.runtime.sandbox import Sandbox
from tests.unit.runtime.test_sandbox import launch_of

INSTANCE = Who(10001, 10001)
RX = READ | EXECUTE


def setfacl(*args: str) -> None:
    if shutil.which("setfacl") is None:
        pytest.fail("setfacl is not installed (apt-get install acl; .ci/run installs it)")
    subprocess.run(["setfacl", *args], check=True)


@pytest.fixture
def workspace() -> Iterator[Path]:
    """A workspace whose parents all let anyone through (pytest's own tmp root is 0700 for root)."""
    with tempfile.TemporaryDirectory(prefix="paradise-access-", dir="/tmp") as top:
        parent = Path(top)
        parent.chmod(0o755)
        ws = parent / "ws"
        ws.mkdir()
        (ws / "app.py").write_text("def hello():\n    return 1\n")
        yield ws


# ---- mode bits, without files ---------------------------------------------------------------------


def test_owner_group_and_other_bits_decide_in_that_order() -> None:
    assert permits(0o700, 10001, 0, INSTANCE, RX)
    assert not permits(0o700, 0, 0, INSTANCE, RX)
    assert permits(0o750, 0, 10001, INSTANCE, RX)
    assert permits(0o705, 0, 0, INSTANCE, RX)
    # the owner's own bits decide for the owner, even when "other" would allow
    assert not permits(0o077, 10001, 0, INSTANCE, RX)
    # a matching group without the bits denies, "other" is not consulted
    assert not permits(0o705, 0, 10001, INSTANCE, RX)
    assert permits(0o750, 0, 20, Who(10001, 10001, frozenset({20})), RX)
    assert not permits(0o704, 0, 0, INSTANCE, RX)  # read without execute: cannot enter


def test_acl_named_user_is_capped_by_the_mask() -> None:
    base = [AclEntry(USER_OBJ, 7), AclEntry(GROUP_OBJ, 0), AclEntry(OTHER, 0)]
    named = [*base, AclEntry(USER, 5, 10001), AclEntry(MASK, 5)]
    assert permits(0o750, 0, 0, INSTANCE, RX, named)
    masked = [*base, AclEntry(USER, 5, 10001), AclEntry(MASK, 4)]
    assert not permits(0o740, 0, 0, INSTANCE, RX, masked)
    group = [*base, AclEntry(GROUP, 5, 10001), AclEntry(MASK, 5)]
    assert permits(0o750, 0, 0, INSTANCE, RX, group)
    assert not permits(0o750, 0, 0, Who(10002, 10002), RX, group)


def test_parse_acl_refuses_what_is_not_a_posix_acl() -> None:
    with pytest.raises(ValueError, match="not a version-2"):
        parse_acl(b"\x02\x00\x00")
    with pytest.raises(ValueError, match="version 3"):
        parse_acl(b"\x03\x00\x00\x00")


# ---- real directories -----------------------------------------------------------------------------


def test_a_root_owned_0700_workspace_is_refused_with_the_fix(workspace: Path) -> None:
    workspace.chmod(0o700)
    refusal = unreadable_workspace(workspace, INSTANCE, parents=False)
    assert refusal is not None
    assert f"uid 10001 and cannot read the workspace {workspace}" in refusal
    assert f"chmod o+rx {workspace}" in refusal
    assert f"setfacl -m u:10001:rx {workspace}" in refusal
    assert "run the bridge as the workspace's owner" in refusal
    workspace.chmod(0o755)
    assert unreadable_workspace(workspace, INSTANCE, parents=False) is None


def test_a_parent_without_search_permission_blocks_only_a_sandbox(workspace: Path) -> None:
    workspace.chmod(0o755)
    assert unreadable_workspace(workspace, INSTANCE, parents=True) is None
    parent = workspace.parent
    parent.chmod(0o700)
    refusal = unreadable_workspace(workspace, INSTANCE, parents=True)
    assert refusal is not None
    assert f"through {parent}" in refusal and f"chmod o+x {parent}" in refusal
    # a container gets the workspace as a bind mount: its parents do not matter there
    assert unreadable_workspace(workspace, INSTANCE, parents=False) is None
    setfacl("-m", "u:10001:x", str(parent))  # search permission alone is enough for a parent
    assert unreadable_workspace(workspace, INSTANCE, parents=True) is None


def test_a_real_acl_grants_the_instance_what_the_mode_bits_deny(workspace: Path) -> None:
    workspace.chmod(0o700)
    setfacl("-m", "u:10001:rx", str(workspace))
    entries = read_acl(workspace)
    assert AclEntry(USER, 5, 10001) in entries and AclEntry(MASK, 5) in entries
    assert unreadable_workspace(workspace, INSTANCE, parents=False) is None
    assert unreadable_workspace(workspace, Who(10002, 10002), parents=False) is not None
    setfacl("-m", "m::r", str(workspace))  # the mask now caps the named user at read: no entry
    assert unreadable_workspace(workspace, INSTANCE, parents=False) is not None


def test_a_real_group_acl_counts_the_supplementary_groups(workspace: Path) -> None:
    workspace.chmod(0o700)
    setfacl("-m", "g:4242:rx", str(workspace))
    assert unreadable_workspace(workspace, INSTANCE, parents=False) is not None
    assert unreadable_workspace(workspace, Who(10001, 10001, frozenset({4242})), parents=False) is None


def test_a_missing_workspace_is_left_to_the_workspace_check(workspace: Path) -> None:
    assert unreadable_workspace(workspace.parent / "gone", INSTANCE, parents=True) is None


def test_container_user_and_entries(workspace: Path, tmp_path: Path) -> None:
    assert user_of("10001:10001") == INSTANCE
    assert user_of("1000:100") == Who(1000, 100)
    assert has_content(workspace)
    empty = tmp_path / "empty"
    (empty / ".git").mkdir(parents=True)
    (empty / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (empty / "node_modules" / "x").mkdir(parents=True)
    (empty / "node_modules" / "x" / "index.js").write_text("module.exports = 1\n")
    (empty / "src").mkdir()
    (empty / "src" / "__init__.py").write_text("")  # empty files: nothing a search could find
    assert not has_content(empty)
    assert not has_content(tmp_path / "gone")
    (empty / "src" / "app.py").write_text("x = 1\n")
    assert has_content(empty)


@pytest.mark.skipif(os.getuid() != 0 or shutil.which("bwrap") is None, reason="needs root (to chown) and bwrap")
def test_the_sandbox_refuses_what_its_mapped_uid_cannot_read_and_the_kernel_agrees(workspace: Path) -> None:
    """A sandbox of a root bridge has no capabilities: a workspace owned by another user with 0700 is closed
    to it, as bwrap itself shows, and Sandbox.command says so before anything starts."""
    os.chown(workspace, 10001, 10001)
    workspace.chmod(0o700)
    spec = InstanceSpec("alice", "svc", 8200, workspace, workspace.parent / "i", command=["/bin/true"])
    with pytest.raises(RuntimeOperationError, match=f"uid 0 and cannot read the workspace {workspace}"):
        Sandbox(workspace.parent / "data").command(spec, launch_of(spec, workspace.parent / "home"))
    probe = ["bwrap", "--unshare-user", "--uid", "10001", "--cap-drop", "ALL", "--ro-bind", "/", "/"]
    probe += ["ls", str(workspace)]
    assert subprocess.run(probe, capture_output=True, check=False).returncode != 0
    workspace.chmod(0o755)
    assert subprocess.run(probe, capture_output=True, check=False).returncode == 0
    argv = Sandbox(workspace.parent / "data").command(spec, launch_of(spec, workspace.parent / "home"))
    assert argv[0] == "bwrap"
