"""The newcomer with Claude Code: one command on a fresh copy of the checkout, a temporary HOME, a project
outside that home (no PARADISE_WORKSPACE_ROOTS: setup adds it to the bridge's roots) and the real ``claude``
CLI on PATH ends with ``claude mcp list`` (run by the test, in the workspace) reporting both servers
Connected, with nothing left to approve; the token never lands in a file inside the workspace.

The same user then works with the CLI the way the issue found it broken: only ``PARADISE_PORT`` set (no
``PARADISE_URL``), and ``--json`` after the subcommand; a rotated token is re-registered with
``devops-paradise mcp-config NAME --claude``. ``claude mcp list`` needs no API key. In CI (CI=true) a missing
``claude`` fails instead of skipping (.ci/run installs it from the npm registry).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.host.serena_install import install_serena
from tests.e2e.test_start_script import Setup, clean_up, new_user, serena_venv_path

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CLAUDE_CACHE = Path.home() / ".cache" / "devops-paradise" / "claude-code" / "node_modules" / ".bin"
SERVERS = ("paradise-serena", "paradise-quality")

pytestmark = [pytest.mark.serena, pytest.mark.slow]


def claude_bin() -> Path:
    found = shutil.which("claude") or shutil.which("claude", path=str(CLAUDE_CACHE))
    if found is None:
        reason = "the Claude Code CLI is not installed (npm install -g @anthropic-ai/claude-code)"
        if IN_CI:
            pytest.fail(f"CI must run the Claude Code test, but {reason}")
        pytest.skip(reason)
    return Path(found)


@pytest.fixture(scope="module")
def claude_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    claude = claude_bin()
    install_serena(serena_venv_path(), progress=lambda line: print(f"[serena install] {line}"))
    setup = new_user(tmp_path_factory.mktemp("claude"), client="e2e-claude")
    setup.env["PATH"] = f"{claude.parent}{os.pathsep}{setup.env['PATH']}"
    # The newcomer's project lies outside the home (here under the temp dir, as /srv/shop or /workspaces/x
    # would), and no roots are configured: setup itself must let it in.
    del setup.env["PARADISE_WORKSPACE_ROOTS"]
    assert setup.home not in setup.workspace.parents
    try:
        yield setup
    finally:
        clean_up(setup)


def claude_list(user: Setup) -> dict[str, str]:
    """``claude mcp list`` in the workspace, as the user would type it: {server name: its line}."""
    done = subprocess.run(["claude", "mcp", "list"], cwd=user.workspace, env=user.env, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return {line.split(":")[0]: line for line in done.stdout.splitlines() if line.split(":")[0] in SERVERS}


def cli(user: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    """The copy's ``devops-paradise`` with only PARADISE_PORT telling it where the bridge is."""
    env = user.env | {"PARADISE_PORT": str(user.port), "PYTHONPATH": str(user.repo)}
    assert "PARADISE_URL" not in env and "PARADISE_DATA_DIR" not in env
    return subprocess.run([sys.executable, "-m", "bridge", *args], cwd=user.workspace, env=env,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_text(errors="replace")]


def test_one_command_ends_with_both_servers_connected(claude_user: Setup) -> None:
    user = claude_user
    done = user.run(user.client, str(user.workspace), "quick", "--runtime", "process", "--port", str(user.port))
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "==> [10/10] Registering the servers with Claude Code" in done.stdout
    assert f"added {user.workspace.resolve()} to the workspace roots" in done.stdout
    for name in SERVERS:
        shown = [line for line in done.stdout.splitlines() if line.strip().startswith(f"{name}: http://")]
        assert len(shown) == 1 and "Connected" in shown[0], done.stdout
    assert "nothing is left to approve" in done.stdout

    listed = claude_list(user)
    assert set(listed) == set(SERVERS), listed
    for name, line in listed.items():
        assert "Connected" in line and "Pending approval" not in line, line
        assert f"/c/{user.client}/{name.removeprefix('paradise-')}/mcp" in line

    token = user.token_file.read_text().strip()
    assert files_holding(user.workspace, token) == []
    assert json.loads(user.mcp_json.read_text())["mcpServers"]["paradise-serena"]["headers"] == {
        "Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"
    }
    holders = files_holding(user.home, token)  # Claude Code's own file (0600, outside the workspace) and ours
    assert user.home / ".claude.json" in holders and user.token_file in holders
    assert user.data_dir / "setup.log" not in holders and user.data_dir / "bridge.log" not in holders


def test_cli_finds_the_bridge_from_paradise_port_alone(claude_user: Setup) -> None:
    listed = cli(claude_user, "client", "list")
    assert listed.returncode == 0, listed.stderr
    assert claude_user.client in listed.stdout and "serena=running" in listed.stdout

    as_json = cli(claude_user, "client", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert [c["client_id"] for c in json.loads(as_json.stdout)] == [claude_user.client]


def test_rotated_token_with_json_after_the_subcommand_then_mcp_config_claude(claude_user: Setup) -> None:
    user = claude_user
    old = user.token_file.read_text().strip()
    rotated = cli(user, "client", "token", user.client, "--token-file", str(user.token_file), "--json")
    assert rotated.returncode == 0, rotated.stderr
    answer = json.loads(rotated.stdout)
    assert answer["token_file"] == str(user.token_file) and "token" not in answer
    new = user.token_file.read_text().strip()
    assert new and new != old

    stale = claude_list(user)  # Claude Code still sends the old token: the bridge refuses it
    assert not any("Connected" in line for line in stale.values()), stale

    added = cli(user, "mcp-config", user.client, "--claude")
    assert added.returncode == 0, added.stderr
    for name in SERVERS:
        assert f"added {name} to Claude Code (local scope, {user.workspace})" in added.stderr
    assert all("Connected" in line for line in claude_list(user).values())
    assert files_holding(user.workspace, new) == []
