"""The ``devops-paradise`` command. Everything but ``serve`` talks to a running bridge over its admin API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from bridge.mcp_config import claude_add_commands, write_mcp_json

DEFAULT_URL = "http://127.0.0.1:8100"


class CliError(Exception):
    pass


# ---- talking to the bridge ---------------------------------------------------------------------------


def admin_token() -> str:
    token = os.environ.get("PARADISE_ADMIN_TOKEN")
    if token:
        return token
    data_dir = Path(os.environ.get("PARADISE_DATA_DIR", "~/.devops-paradise")).expanduser()
    try:
        return (data_dir / "admin-token").read_text().strip()
    except OSError:
        raise CliError(
            f"no admin token: set PARADISE_ADMIN_TOKEN or start the bridge once (it writes {data_dir}/admin-token)"
        ) from None


def call(method: str, path: str, **kwargs: Any) -> Any:
    url = os.environ.get("PARADISE_URL", DEFAULT_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {admin_token()}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(10, read=660)) as http:
            resp = http.request(method, "/api/v1" + path, **kwargs)
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach the bridge at {url} ({exc.__class__.__name__}); is it running?") from None
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise CliError(f"{resp.status_code}: {message}")
    return resp.json() if resp.content else None


# ---- rendering ---------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def show_client(client: dict[str, Any]) -> str:
    out = [f"client     {client['client_id']}", f"workspace  {client['workspace']}", f"profile    {client['profile']}"]
    rows = [
        [i["service"], i["state"] + (f" ({i['step']})" if i.get("step") else ""), str(i["port"]),
         str(i["restarts"]), i["url"]]
        for i in client["instances"]
    ]
    out += ["", table(rows, ["SERVICE", "STATE", "PORT", "RESTARTS", "URL"])]
    for inst in client["instances"]:
        if inst.get("last_error"):
            out += ["", f"{inst['service']} last error: {inst['last_error']}"]
            out += [f"  | {line}" for line in inst.get("last_log", [])[-15:]]
    return "\n".join(out)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


# ---- commands ----------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> None:
    from bridge.app import run
    from bridge.settings import load_settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "runtime": args.runtime,
                                   "data_dir": args.data_dir}.items() if v is not None}
    settings = load_settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(settings)


def cmd_client_add(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"client_id": args.name, "workspace": str(Path(args.workspace).expanduser().absolute())}
    if args.profile:
        body["profile"] = args.profile
    if args.service:
        body["services"] = args.service
    created = call("POST", "/clients", json=body, params={"wait": args.wait})
    text = show_client(created) + (
        f"\n\ntoken (shown once; export it for Claude Code):\n  export DEVOPS_PARADISE_TOKEN={created['token']}"
    )
    emit(args, created, text)


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
    emit(args, rotated, f"new token for {args.name} (the old one no longer works):\n  {rotated['token']}")


def cmd_mcp_config(args: argparse.Namespace) -> None:
    config = call("GET", f"/clients/{args.name}/mcp-config")
    if args.write:
        target = Path(args.write).expanduser()
        path, backup = write_mcp_json(target, config)
        note = f" (previous file kept as {backup})" if backup else ""
        print(f"wrote {path}{note}", file=sys.stderr)
    text = json.dumps(config, indent=2) + "\n\n" + "\n".join(claude_add_commands(config))
    emit(args, config, text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="devops-paradise", description="Your own MCP servers, per client.")
    top.add_argument("--json", action="store_true", help="machine-readable output")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bridge in the foreground")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--runtime", choices=["auto", "docker", "process"])
    serve.add_argument("--data-dir")
    serve.set_defaults(func=cmd_serve)

    client = sub.add_parser("client", help="manage clients").add_subparsers(dest="action", required=True)
    add = client.add_parser("add", help="register a client and start its instances")
    add.add_argument("name")
    add.add_argument("--workspace", default=".", help="project directory (default: current)")
    add.add_argument("--profile", help="quality profile (quick, python, comprehensive)")
    add.add_argument("--service", action="append", help="service to run (repeatable; default serena and quality)")
    add.add_argument("--wait", type=float, default=120, help="seconds to wait for readiness (0: do not wait)")
    add.set_defaults(func=cmd_client_add)
    for name, func, text in (
        ("show", cmd_client_show, "one client with its instances"),
        ("rm", cmd_client_rm, "delete a client: stop its instances, release its ports"),
        ("restart", cmd_client_restart, "restart a client's instances"),
        ("token", cmd_client_token, "rotate a client's token"),
    ):
        one = client.add_parser(name, help=text)
        one.add_argument("name")
        one.set_defaults(func=func)
    client.add_parser("list", help="all clients").set_defaults(func=cmd_client_list)

    mcp = sub.add_parser("mcp-config", help="print (or --write) the Claude Code configuration of a client")
    mcp.add_argument("name")
    mcp.add_argument("--write", metavar="DIR", nargs="?", const=".", help="merge into DIR/.mcp.json")
    mcp.set_defaults(func=cmd_mcp_config)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for sub in ("json",):
        args.__dict__.setdefault(sub, False)
    try:
        args.func(args)
    except CliError as exc:
        print(f"devops-paradise: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from bridge.settings import SettingsError

        if isinstance(exc, SettingsError):
            print(f"devops-paradise: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
