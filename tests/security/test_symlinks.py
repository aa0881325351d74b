"""``mcp-config --write`` never writes through a symlink planted in the workspace (real CLI, the
whole bridge in-process: tests/inprocess/)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from bridge.mcp.claude_config import write_mcp_json
from tests.helpers import PYTHON, ROOT
from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess
OURS = {"mcpServers": {"paradise-echo": {"type": "http", "url": "http://127.0.0.1:8100/c/a/echo/mcp"}}}


@pytest.fixture(scope="module")
def registered(bridge: InProcessBridge, workspace: Path) -> str:
    bridge.register("linked", workspace, ["echo"], wait=0)
    return "linked"


def mcp_config_write(bridge: InProcessBridge, client_id: str, directory: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARADISE_URL": bridge.url, "PARADISE_ADMIN_TOKEN": bridge.admin_token}
    return subprocess.run([PYTHON, "-m", "bridge", "mcp-config", client_id, "--write", str(directory)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of someone else's (here: the bridge user's shell profile, say) that a tenant wants overwritten."""
    path = tmp_path / "victim" / ".bashrc"
    path.parent.mkdir()
    path.write_text("# precious\n")
    return path


@pytest.mark.parametrize("planted", [".mcp.json.tmp", ".mcp.json"])
def test_a_planted_symlink_is_refused_and_its_target_untouched(
    bridge: InProcessBridge, registered: str, tmp_path: Path, victim: Path, planted: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / planted).symlink_to(victim)
    done = mcp_config_write(bridge, registered, project)
    assert done.returncode != 0 and "is a symlink; refusing to write through it" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert victim.read_text() == "# precious\n"
    assert (project / planted).is_symlink()  # left as it was, for the owner to look at
    if planted != ".mcp.json":
        assert not (project / ".mcp.json").exists()


def test_a_dangling_symlink_cannot_create_a_file_elsewhere(
    bridge: InProcessBridge, registered: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    target = tmp_path / "outside" / "created-by-the-bridge"
    target.parent.mkdir()
    (project / ".mcp.json.tmp").symlink_to(target)
    assert mcp_config_write(bridge, registered, project).returncode != 0
    assert not target.exists()


def test_the_normal_write_still_merges(bridge: InProcessBridge, registered: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"mine": {"command": "x"}}}))
    (project / ".mcp.json").chmod(0o600)
    (project / ".mcp.json.tmp").write_text("left by a crash")  # a regular leftover is simply replaced
    done = mcp_config_write(bridge, registered, project)
    assert done.returncode == 0, done.stderr
    servers = json.loads((project / ".mcp.json").read_text())["mcpServers"]
    assert set(servers) == {"mine", "paradise-echo"}
    assert not (project / ".mcp.json.tmp").exists()
    (backup,) = project.glob(".mcp.json.bak-*")
    assert json.loads(backup.read_text()) == {"mcpServers": {"mine": {"command": "x"}}}
    for path in (project / ".mcp.json", backup):  # it may hold other servers' secrets: stays private
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_planted_as_the_backup_name_is_not_followed(tmp_path: Path, victim: Path) -> None:
    (tmp_path / ".mcp.json").write_text("{}")
    for second in range(3):  # whatever second the backup is stamped with, its name is already taken
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() + second))
        (tmp_path / f".mcp.json.bak-{stamp}").symlink_to(victim)
    path, backup = write_mcp_json(tmp_path, OURS)
    assert backup is not None and not backup.is_symlink() and backup.read_text() == "{}"
    assert victim.read_text() == "# precious\n"
    assert json.loads(path.read_text()) == OURS
