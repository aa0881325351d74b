"""Claude Code registration: the pasted lines run by a real bash, the token found where setup keeps it, and
(with the real ``claude`` CLI, in a temporary HOME) local-scope add, list and remove — never the token in the
workspace, never in an error message."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli.setup import claude as setup_claude
from tests.e2e.test_claude_code import claude_bin

CONFIG = {"mcpServers": {
    "paradise-serena": {"type": "http", "url": "http://127.0.0.1:1/c/alice/serena/mcp",
                        "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"}},
    "paradise-quality": {"type": "http", "url": "http://127.0.0.1:1/c/alice/quality/mcp",
                         "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"}},
}}
TOKEN = "tok-" + "x" * 40


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("DEVOPS_PARADISE_TOKEN", raising=False)
    monkeypatch.delenv("PARADISE_DATA_DIR", raising=False)
    return home


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_pasted_lines_give_claude_exactly_these_arguments(tmp_path: Path) -> None:
    workspace = tmp_path / "it's my project"
    workspace.mkdir()
    token_file = tmp_path / "a token dir" / "alice"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    shell = f"$(cat {setup_claude.quoted(str(token_file))})"
    for line, (name, server) in zip(setup_claude.manual_commands(workspace, CONFIG, shell),
                                    CONFIG["mcpServers"].items(), strict=True):
        script = 'claude() { printf "%s\\n" "$PWD" "$@"; }\n' + line
        argv = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
        assert argv.splitlines() == [str(workspace), "mcp", "add", "--scope", "local", "--transport", "http", name,
                                     server["url"], "--header", f"Authorization: Bearer {TOKEN}"]


def test_the_token_is_found_where_setup_keeps_it(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert setup_claude.stored_token("alice", None) == (None, "$DEVOPS_PARADISE_TOKEN")
    kept = home / ".devops-paradise" / "tokens" / "alice"
    kept.parent.mkdir(parents=True)
    kept.write_text(TOKEN + "\n")
    assert setup_claude.stored_token("alice", None) == (TOKEN, f"$(cat '{kept}')")
    monkeypatch.setenv("DEVOPS_PARADISE_TOKEN", "from-env")
    assert setup_claude.stored_token("alice", None) == ("from-env", "$DEVOPS_PARADISE_TOKEN")
    with pytest.raises(setup_claude.ClaudeCodeError, match="cannot read the token file"):
        setup_claude.stored_token("alice", str(home / "nowhere"))


def test_claude_code_inside_the_workspace_is_noticed(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert setup_claude.config_inside(home) is True  # a workspace that is the home itself
    assert setup_claude.config_inside(home / "project") is False
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / "project" / ".claude-config"))
    assert setup_claude.config_inside(home / "project") is True
    with pytest.raises(setup_claude.ClaudeCodeError, match="lies inside the workspace"):
        setup_claude.register("claude", home / "project", CONFIG, TOKEN)


def test_without_claude_the_cli_gets_the_lines_and_the_approval_note(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(setup_claude.ClaudeCodeError, match="claude command not found") as refused:
        setup_claude.register_for_cli("alice", tmp_path, CONFIG, None)
    assert refused.value.lines[0].startswith("`claude` was not found on PATH")
    assert "--header \"Authorization: Bearer $DEVOPS_PARADISE_TOKEN\"" in refused.value.lines[1]
    assert "asks you to approve the project's servers (paradise-serena, paradise-quality" in refused.value.lines[-1]


def test_real_claude_local_scope_add_list_remove(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claude = str(claude_bin())
    workspace = tmp_path / "project"
    workspace.mkdir()
    lines = setup_claude.register(claude, workspace, CONFIG, TOKEN)
    assert lines == [f"added {name} to Claude Code (local scope, {workspace})" for name in CONFIG["mcpServers"]]
    again = setup_claude.register(claude, workspace, CONFIG, TOKEN)  # a stale entry of the same name is replaced
    assert again == lines

    listed = setup_claude.listed(claude, workspace, list(CONFIG["mcpServers"]))
    assert sorted(line.split(":")[0] for line in listed) == ["paradise-quality", "paradise-serena"]
    assert not any(map(setup_claude.connected, listed))  # nothing listens on port 1
    assert all(TOKEN not in p.read_text(errors="replace") for p in workspace.rglob("*") if p.is_file())
    assert TOKEN in (home / ".claude.json").read_text()
    assert oct((home / ".claude.json").stat().st_mode & 0o777) == "0o600"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert setup_claude.listed(claude, elsewhere, list(CONFIG["mcpServers"])) == []  # local: this project only

    assert setup_claude.unregister(claude, workspace, list(CONFIG["mcpServers"])) == list(CONFIG["mcpServers"])
    assert setup_claude.listed(claude, workspace, list(CONFIG["mcpServers"])) == []
    assert TOKEN not in (home / ".claude.json").read_text()


def test_what_a_failing_claude_said_never_repeats_the_token() -> None:
    said = subprocess.run([sys.executable, "-c", f"import sys; print('rejected header Bearer {TOKEN}', "
                           "file=sys.stderr); sys.exit(3)"], capture_output=True, text=True)
    assert setup_claude.said_without(said, TOKEN) == "rejected header Bearer ***"
    silent = subprocess.run([sys.executable, "-c", "raise SystemExit(4)"], capture_output=True, text=True)
    assert setup_claude.said_without(silent, TOKEN) == "exit status 4"


def test_mcp_config_takes_claude_and_token_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                home: Path) -> None:
    from bridge.cli import main
    from tests.helpers import free_block

    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", "admin")
    monkeypatch.delenv("PARADISE_URL", raising=False)
    monkeypatch.setenv("PARADISE_PORT", str(free_block(1)))  # nothing listens there
    assert main(["mcp-config", "alice", "--claude", "--token-file", str(home / "t"), "--json"]) == 1
    assert "cannot reach the bridge at http://127.0.0.1:" in capsys.readouterr().err
