"""``devops-paradise client …`` and ``mcp-config``: registration, views, tokens and the Claude Code config."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bridge.cli.common import CliError, call, deliver_token, emit, show_client, table
from bridge.cli.setup.claude import ClaudeCodeError, register_for_cli
from bridge.mcp.claude_config import claude_add_commands, write_mcp_json
from bridge.models import CLIENT_ID, CLIENT_ID_RULE

READY_STATES = ("running", "idle")  # idle: stopped by the idle timeout, woken by the next request


def client_name(value: str) -> str:
    """argparse type: a client id as the bridge accepts it, as a full match (a trailing newline is refused too)."""
    if not CLIENT_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: {CLIENT_ID_RULE}")
    return value


def cmd_client_add(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"client_id": args.name, "workspace": str(Path(args.workspace).expanduser().absolute())}
    if args.profile:
        body["profile"] = args.profile
    if args.service:
        body["services"] = args.service
    if getattr(args, "languages", None):
        body["languages"] = [name.strip().lower() for name in args.languages.split(",") if name.strip()]
    created = call("POST", "/clients", json=body, params={"wait": args.wait})
    try:
        hint = deliver_token(args, created)
    except OSError as exc:  # never leave a client whose token nobody has
        call("DELETE", f"/clients/{args.name}")
        raise CliError(f"cannot write the token file {args.token_file} ({exc.strerror}); registration undone") from None
    emit(args, created, show_client(created) + f"\n\ntoken (shown once; export it for Claude Code):\n  {hint}")


def cmd_client_list(args: argparse.Namespace) -> None:
    clients = call("GET", "/clients")
    rows = [
        [c["client_id"], ", ".join(f"{i['service']}={i['state']}" for i in c["instances"]), c["workspace"]]
        for c in clients
    ]
    emit(args, clients, table(rows, ["CLIENT", "INSTANCES", "WORKSPACE"]) if rows else "no clients")


def cmd_client_show(args: argparse.Namespace) -> None:
    client = call("GET", f"/clients/{args.name}")
    emit(args, client, show_client(client))


def cmd_client_rm(args: argparse.Namespace) -> None:
    call("DELETE", f"/clients/{args.name}")
    emit(args, {"deleted": args.name}, f"deleted {args.name} (instances stopped, ports released)")


def cmd_client_restart(args: argparse.Namespace) -> None:
    client = call("POST", f"/clients/{args.name}/restart")
    emit(args, client, show_client(client))


def cmd_client_token(args: argparse.Namespace) -> None:
    rotated = call("POST", f"/clients/{args.name}/token")
    try:
        hint = deliver_token(args, rotated)
    except OSError as exc:
        raise CliError(f"token rotated, but {args.token_file} cannot be written ({exc.strerror})") from None
    emit(args, rotated, f"new token for {args.name} (the old one no longer works):\n  {hint}")


def client_progress(client: dict[str, Any], seen: dict[str, str]) -> None:
    for inst in client["instances"]:
        label = inst["state"] + (f" ({inst['step']})" if inst.get("step") else "")
        if seen.get(inst["service"]) != label:
            seen[inst["service"]] = label
            print(f"  {inst['service']}: {label}", flush=True)


def cmd_client_wait(args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.timeout
    seen: dict[str, str] = {}
    while True:
        client = call("GET", f"/clients/{args.name}")
        client_progress(client, seen)
        failed = [i for i in client["instances"] if i["state"] == "failed"]
        if failed:
            print(show_client(client), file=sys.stderr)
            raise CliError(f"{failed[0]['service']} of {args.name} failed to start: {failed[0]['last_error']}")
        if all(i["state"] in READY_STATES for i in client["instances"]):
            for inst in client["instances"]:
                for note in inst.get("notes", []):
                    print(f"  note: {inst['service']}: {note}", flush=True)
            emit(args, client, f"all instances of {args.name} are running")
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f"{s} {label}" for s, label in seen.items())
            raise CliError(f"instances of {args.name} not ready within {args.timeout:g}s ({waiting})")
        time.sleep(args.interval)


def already_written(target: Path, config: dict[str, Any]) -> Path | None:
    """The .mcp.json under ``target`` when it already holds exactly our servers (no rewrite, no new backup)."""
    path = target / ".mcp.json" if target.is_dir() or not target.suffix else target
    try:
        servers = json.loads(path.read_text()).get("mcpServers") or {}
    except (OSError, ValueError, AttributeError):
        return None
    return path if all(servers.get(k) == v for k, v in config.get("mcpServers", {}).items()) else None


def write_config(target: Path, config: dict[str, Any]) -> None:
    unchanged = already_written(target, config)
    if unchanged:
        print(f"{unchanged} already up to date", file=sys.stderr)
        return
    try:
        path, backup = write_mcp_json(target, config)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    note = f" (previous file kept as {backup})" if backup else ""
    print(f"wrote {path}{note}", file=sys.stderr)


def add_to_claude(config: dict[str, Any], scope: str) -> None:
    """``claude mcp add-json NAME JSON --scope SCOPE`` for each server, when the claude command exists."""
    claude = shutil.which("claude")
    if claude is None:
        print("`claude` was not found on PATH; run these lines once it is installed:", file=sys.stderr)
        print("\n".join(f"{line} --scope {scope}" for line in claude_add_commands(config)), file=sys.stderr)
        raise CliError("claude command not found; nothing was added")
    for name, server in config.get("mcpServers", {}).items():
        argv = [claude, "mcp", "add-json", name, json.dumps(server), "--scope", scope]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise CliError(f"claude mcp add-json {name} failed: {(done.stderr or done.stdout).strip()[:300]}")
        print(f"added {name} to Claude Code ({scope} scope)", file=sys.stderr)


def add_to_claude_local(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """``--claude``: the servers at local scope for the client's workspace, so Claude Code asks nothing."""
    workspace = Path(call("GET", f"/clients/{args.name}")["workspace"])
    try:
        lines = register_for_cli(args.name, workspace, config, args.token_file)
    except ClaudeCodeError as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        raise CliError(str(exc)) from None
    print("\n".join(lines), file=sys.stderr)


def cmd_mcp_config(args: argparse.Namespace) -> None:
    config = call("GET", f"/clients/{args.name}/mcp-config")
    if args.write:
        write_config(Path(args.write).expanduser(), config)
    if args.scope:
        add_to_claude(config, args.scope)
    if args.claude:
        add_to_claude_local(args, config)
    text = json.dumps(config, indent=2) + "\n\n" + "\n".join(claude_add_commands(config))
    emit(args, config, text)


def add_client_parsers(sub: Any) -> None:
    client = sub.add_parser("client", help="manage clients").add_subparsers(dest="action", required=True)
    add = client.add_parser("add", help="register a client and start its instances")
    add.add_argument("name", type=client_name)
    add.add_argument("--workspace", default=".", help="project directory (default: current)")
    add.add_argument("--profile", help="quality profile (quick, python, comprehensive)")
    add.add_argument("--service", action="append", help="service to run (repeatable; default serena and quality)")
    add.add_argument("--languages", help="Serena's languages, comma-separated (e.g. python,typescript); default "
                     "detected from the workspace at each start")
    add.add_argument("--wait", type=float, default=120, help="seconds to wait for readiness (0: do not wait)")
    add.add_argument("--token-file", help="store the token in this file (0600) instead of printing it")
    add.set_defaults(func=cmd_client_add)
    for name, func, text in (
        ("show", cmd_client_show, "one client with its instances"),
        ("rm", cmd_client_rm, "delete a client: stop its instances, release its ports"),
        ("restart", cmd_client_restart, "restart a client's instances"),
        ("token", cmd_client_token, "rotate a client's token"),
        ("wait", cmd_client_wait, "wait until every instance of a client runs, printing each state change"),
    ):
        one = client.add_parser(name, help=text)
        one.add_argument("name", type=client_name)
        one.set_defaults(func=func)
        if name == "token":
            one.add_argument("--token-file", help="store the new token in this file (0600) instead of printing it")
        if name == "wait":
            one.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
            one.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    client.add_parser("list", help="all clients").set_defaults(func=cmd_client_list)


def add_mcp_config_parser(sub: Any) -> None:
    mcp = sub.add_parser("mcp-config", help="print (or --write) the Claude Code configuration of a client")
    mcp.add_argument("name", type=client_name)
    mcp.add_argument("--write", metavar="DIR", nargs="?", const=".", help="merge into DIR/.mcp.json")
    mcp.add_argument("--scope", choices=["user", "local"], help="add to Claude Code with `claude mcp add-json`")
    mcp.add_argument("--claude", action="store_true", help="register with Claude Code at local scope for the "
                     "client's workspace, with the real token (kept in ~/.claude.json), then `claude mcp list`")
    mcp.add_argument("--token-file", help="with --claude: the token file (default: DEVOPS_PARADISE_TOKEN, else "
                     "DATA_DIR/tokens/NAME as setup writes it)")
    mcp.set_defaults(func=cmd_mcp_config)
