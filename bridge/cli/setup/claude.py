"""Claude Code registration: the client's servers added at *local* scope, so nothing is left to approve.

A project's ``.mcp.json`` makes Claude Code ask, on its first start, whether to trust the project's servers
("Pending approval" in ``claude mcp list``). A server added with ``claude mcp add --scope local`` is the
user's own choice for that directory and needs no approval; Claude Code keeps it in ``~/.claude.json``
(outside the workspace), so the real token can go into its header without landing in the project.
Used by ``devops-paradise setup`` (its last steps) and ``devops-paradise mcp-config NAME --claude``/``--write``,
which also share ``write_config``: the project's ``.mcp.json``, left alone when it already holds our servers.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bridge.cli.common import CliError
from bridge.mcp.claude_config import write_mcp_json

CLAUDE_TIMEOUT = 60  # one `claude mcp add/remove` (a node start, a JSON write)
CLAUDE_LIST_TIMEOUT = 180  # `claude mcp list` connects to every server it knows


class ClaudeCodeError(Exception):
    """A ``claude`` command failed; the message never contains the token. ``lines``: what to show first."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


def claude_command() -> str | None:
    return shutil.which("claude")


def claude_config_file() -> Path:
    """Where Claude Code keeps local-scope servers (``CLAUDE_CONFIG_DIR`` moves it)."""
    base = os.environ.get("CLAUDE_CONFIG_DIR") or str(Path.home())
    return Path(base).expanduser().absolute() / ".claude.json"


def config_inside(workspace: Path) -> bool:
    """True when Claude Code's own file lies in the workspace: the token would then land in the project."""
    try:
        claude_config_file().resolve().relative_to(workspace.resolve())
    except ValueError:
        return False
    return True


def quoted(text: str) -> str:
    """Always single-quoted for the shell (the lines are pasted; a path with a space must survive)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _servers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(config.get("mcpServers") or {})


def manual_commands(workspace: Path, config: dict[str, Any], token_shell: str) -> list[str]:
    """The exact lines to paste, with the token as shell text (``$(cat FILE)`` keeps it off the screen)."""
    lines = []
    for name, server in _servers(config).items():
        lines.append(
            f"cd {quoted(str(workspace))} && claude mcp add --scope local --transport http "
            f"{shlex.quote(name)} {shlex.quote(server['url'])} --header \"Authorization: Bearer {token_shell}\""
        )
    return lines


def approval_note(config: dict[str, Any]) -> str:
    names = ", ".join(_servers(config))
    return (f"without that, the first `claude` start in the workspace asks you to approve the project's servers "
            f"({names} from .mcp.json), and DEVOPS_PARADISE_TOKEN must be exported for them")


def already_written(target: Path, config: dict[str, Any]) -> Path | None:
    """The .mcp.json under ``target`` when it already holds exactly our servers (no rewrite, no new backup)."""
    path = target / ".mcp.json" if target.is_dir() or not target.suffix else target
    try:
        servers = json.loads(path.read_text()).get("mcpServers") or {}
    except (OSError, ValueError, AttributeError):
        return None
    return path if all(servers.get(k) == v for k, v in config.get("mcpServers", {}).items()) else None


def write_config(target: Path, config: dict[str, Any]) -> str:
    """Merge our servers into ``target``'s .mcp.json; the line saying what was done (CliError when it cannot)."""
    unchanged = already_written(target, config)
    if unchanged:
        return f"{unchanged} already up to date"
    try:
        path, backup = write_mcp_json(target, config)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    note = f" (previous file kept as {backup})" if backup else ""
    return f"wrote {path}{note}"


def _run(claude: str, args: list[str], workspace: Path, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([claude, *args], cwd=workspace, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ClaudeCodeError(f"`claude {args[0]} {args[1]}` did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise ClaudeCodeError(f"cannot run {claude} ({exc.strerror})") from None


def said_without(done: subprocess.CompletedProcess, token: str) -> str:
    text = (done.stderr or done.stdout or "").strip()
    if token:
        text = text.replace(token, "***")
    return " ".join(text.split())[:300] or f"exit status {done.returncode}"


def register(claude: str, workspace: Path, config: dict[str, Any], token: str) -> list[str]:
    """Add every server at local scope for ``workspace`` (a stale entry of the same name is removed first).
    Returns one line per server for the user."""
    if config_inside(workspace):
        raise ClaudeCodeError(f"Claude Code's configuration {claude_config_file()} lies inside the workspace, "
                              "so the token would land in the project; nothing was added")
    lines = []
    for name, server in _servers(config).items():
        _run(claude, ["mcp", "remove", "--scope", "local", name], workspace, CLAUDE_TIMEOUT)
        argv = ["mcp", "add", "--scope", "local", "--transport", "http", name, server["url"],
                "--header", f"Authorization: Bearer {token}"]
        done = _run(claude, argv, workspace, CLAUDE_TIMEOUT)
        if done.returncode != 0:
            raise ClaudeCodeError(f"claude mcp add {name} failed: {said_without(done, token)}")
        lines.append(f"added {name} to Claude Code (local scope, {workspace})")
    return lines


def unregister(claude: str, workspace: Path, names: list[str]) -> list[str]:
    """Remove our local-scope servers for ``workspace``; names that were not there are skipped."""
    removed = []
    for name in names:
        if _run(claude, ["mcp", "remove", "--scope", "local", name], workspace, CLAUDE_TIMEOUT).returncode == 0:
            removed.append(name)
    return removed


def listed(claude: str, workspace: Path, names: list[str]) -> list[str]:
    """``claude mcp list`` in the workspace: the lines about our servers (each ``NAME: URL (HTTP) - status``)."""
    done = _run(claude, ["mcp", "list"], workspace, CLAUDE_LIST_TIMEOUT)
    if done.returncode != 0:
        raise ClaudeCodeError(f"claude mcp list failed: {said_without(done, '')}")
    return [line.strip() for line in done.stdout.splitlines() if any(line.strip().startswith(f"{n}:") for n in names)]


def connected(line: str) -> bool:
    return "Connected" in line and "Failed" not in line


def stored_token(client: str, token_file: str | None) -> tuple[str | None, str]:
    """The client's token and how to write it in a pasted shell line: ``--token-file``, else
    ``$DEVOPS_PARADISE_TOKEN``, else the file setup keeps (DATA_DIR/tokens/CLIENT)."""
    data_dir = Path(os.environ.get("PARADISE_DATA_DIR") or "~/.devops-paradise").expanduser()
    path = Path(token_file).expanduser().absolute() if token_file else data_dir / "tokens" / client
    if token_file or not os.environ.get("DEVOPS_PARADISE_TOKEN"):
        shell = f"$(cat {quoted(str(path))})"
        try:
            return path.read_text().strip() or None, shell
        except OSError:
            if token_file:
                raise ClaudeCodeError(f"cannot read the token file {path}") from None
            return None, "$DEVOPS_PARADISE_TOKEN"
    return os.environ["DEVOPS_PARADISE_TOKEN"], "$DEVOPS_PARADISE_TOKEN"


def register_for_cli(client: str, workspace: Path, config: dict[str, Any], token_file: str | None) -> list[str]:
    """``mcp-config NAME --claude``: register, then what ``claude mcp list`` says; without ``claude``, the
    lines to paste (raises ``ClaudeCodeError`` after printing nothing itself; the caller shows ``lines``)."""
    token, shell = stored_token(client, token_file)
    claude = claude_command()
    if claude is None:
        lines = ["`claude` was not found on PATH; run these lines once it is installed (local scope):"]
        lines += [*manual_commands(workspace, config, shell), approval_note(config) + "."]
        raise ClaudeCodeError("claude command not found; nothing was added", lines)
    if token is None:
        raise ClaudeCodeError(f"no token for {client}: pass --token-file, set DEVOPS_PARADISE_TOKEN, or issue one "
                              f"with `devops-paradise client token {client} --token-file FILE`")
    lines = register(claude, workspace, config, token)
    return lines + [f"claude mcp list: {line}" for line in listed(claude, workspace, list(_servers(config)))]
