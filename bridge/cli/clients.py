"""``devops-paradise client …`` and ``mcp-config``: registration, views, tokens and the Claude Code config."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bridge.cli.common import (
    AdminClient,
    CliError,
    WaitFailed,
    client_name,
    deliver_token,
    emit,
    show_client,
    table,
)
from bridge.cli.setup.claude import ClaudeCodeError, register_for_cli, write_config
from bridge.mcp.claude_config import claude_add_commands


def cmd_client_add(args: argparse.Namespace) -> None:
    admin = AdminClient()
    languages = [name.strip().lower() for name in (getattr(args, "languages", None) or "").split(",") if name.strip()]
    created = admin.add_client(args.name, Path(args.workspace).expanduser().absolute(), profile=args.profile,
                               services=args.service, languages=languages, wait=args.wait)
    data = created.model_dump(mode="json")
    try:
        hint = deliver_token(args, data)
    except OSError as exc:  # never leave a client whose token nobody has
        admin.delete_client(args.name)
        raise CliError(f"cannot write the token file {args.token_file} ({exc.strerror}); registration undone") from None
    emit(args, data, show_client(created) + f"\n\ntoken (shown once; export it for Claude Code):\n  {hint}")


def cmd_client_list(args: argparse.Namespace) -> None:
    clients = AdminClient().list_clients()
    rows = [[c.client_id, ", ".join(f"{i.service}={i.state}" for i in c.instances), c.workspace] for c in clients]
    emit(args, [c.model_dump(mode="json") for c in clients],
         table(rows, ["CLIENT", "INSTANCES", "WORKSPACE"]) if rows else "no clients")


def cmd_client_show(args: argparse.Namespace) -> None:
    client = AdminClient().client(args.name)
    emit(args, client.model_dump(mode="json"), show_client(client))


def cmd_client_rm(args: argparse.Namespace) -> None:
    AdminClient().delete_client(args.name)
    emit(args, {"deleted": args.name}, f"deleted {args.name} (instances stopped, ports released)")


def cmd_client_restart(args: argparse.Namespace) -> None:
    client = AdminClient().restart_client(args.name)
    emit(args, client.model_dump(mode="json"), show_client(client))


def cmd_client_token(args: argparse.Namespace) -> None:
    rotated = AdminClient().rotate_token(args.name).model_dump(mode="json")
    try:
        hint = deliver_token(args, rotated)
    except OSError as exc:
        raise CliError(f"token rotated, but {args.token_file} cannot be written ({exc.strerror})") from None
    emit(args, rotated, f"new token for {args.name} (the old one no longer works):\n  {hint}")


def cmd_client_wait(args: argparse.Namespace) -> None:
    try:
        client = AdminClient().wait_ready(args.name, args.timeout, args.interval,
                                          progress=lambda service, state: print(f"  {service}: {state}", flush=True))
    except WaitFailed as exc:
        if exc.failed is not None:
            print(show_client(exc.client), file=sys.stderr)
        raise
    for inst in client.instances:
        for note in inst.notes:
            print(f"  note: {inst.service}: {note}", flush=True)
    emit(args, client.model_dump(mode="json"), f"all instances of {args.name} are running")


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
    workspace = Path(AdminClient().client(args.name).workspace)
    try:
        lines = register_for_cli(args.name, workspace, config, args.token_file)
    except ClaudeCodeError as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        raise CliError(str(exc)) from None
    print("\n".join(lines), file=sys.stderr)


def cmd_mcp_config(args: argparse.Namespace) -> None:
    config = AdminClient().mcp_config(args.name).model_dump(mode="json")
    if args.write:
        print(write_config(Path(args.write).expanduser(), config), file=sys.stderr)
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
