"""The ``devops-paradise`` command. Everything but ``serve`` talks to a running bridge over its admin API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bridge.mcp_config import claude_add_commands, write_mcp_json

DEFAULT_URL = "http://127.0.0.1:8100"
READY_STATES = ("running", "idle")  # idle: stopped by the idle timeout, woken by the next request


class CliError(Exception):
    """A failure said in one line; ``code`` is the exit status (4: the client or thing was not found)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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
        raise CliError(f"{resp.status_code}: {message}", code=4 if resp.status_code == 404 else 1)
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
    print(json.dumps(data, indent=2) if args.json else text, flush=True)


def write_token_file(path: Path, token: str) -> None:
    """Store a client token in ``path`` (mode 0600, directory 0700), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def deliver_token(args: argparse.Namespace, data: dict[str, Any]) -> str:
    """Put the token where it was asked for; returns the text telling the user where it is."""
    if not args.token_file:
        return f"export DEVOPS_PARADISE_TOKEN={data['token']}"
    path = Path(args.token_file).expanduser().absolute()
    write_token_file(path, data.pop("token"))
    data["token_file"] = str(path)
    return f'export DEVOPS_PARADISE_TOKEN="$(cat {path})"'


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


def cmd_mcp_config(args: argparse.Namespace) -> None:
    config = call("GET", f"/clients/{args.name}/mcp-config")
    if args.write:
        write_config(Path(args.write).expanduser(), config)
    if args.scope:
        add_to_claude(config, args.scope)
    text = json.dumps(config, indent=2) + "\n\n" + "\n".join(claude_add_commands(config))
    emit(args, config, text)


def add_client_parsers(sub: Any) -> None:
    client = sub.add_parser("client", help="manage clients").add_subparsers(dest="action", required=True)
    add = client.add_parser("add", help="register a client and start its instances")
    add.add_argument("name")
    add.add_argument("--workspace", default=".", help="project directory (default: current)")
    add.add_argument("--profile", help="quality profile (quick, python, comprehensive)")
    add.add_argument("--service", action="append", help="service to run (repeatable; default serena and quality)")
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
        one.add_argument("name")
        one.set_defaults(func=func)
        if name == "token":
            one.add_argument("--token-file", help="store the new token in this file (0600) instead of printing it")
        if name == "wait":
            one.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
            one.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    client.add_parser("list", help="all clients").set_defaults(func=cmd_client_list)


def parser() -> argparse.ArgumentParser:
    from bridge.cli_doctor import add_doctor_parsers

    top = argparse.ArgumentParser(prog="devops-paradise", description="Your own MCP servers, per client.")
    top.add_argument("--json", action="store_true", help="machine-readable output")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the bridge in the foreground")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--runtime", choices=["auto", "docker", "process"])
    serve.add_argument("--data-dir")
    serve.set_defaults(func=cmd_serve)
    add_client_parsers(sub)

    mcp = sub.add_parser("mcp-config", help="print (or --write) the Claude Code configuration of a client")
    mcp.add_argument("name")
    mcp.add_argument("--write", metavar="DIR", nargs="?", const=".", help="merge into DIR/.mcp.json")
    mcp.add_argument("--scope", choices=["user", "local"], help="add to Claude Code with `claude mcp add-json`")
    mcp.set_defaults(func=cmd_mcp_config)
    add_doctor_parsers(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for sub in ("json",):
        args.__dict__.setdefault(sub, False)
    try:
        status = args.func(args)
    except CliError as exc:
        print(f"devops-paradise: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:
        from bridge.settings import SettingsError

        if isinstance(exc, SettingsError):
            print(f"devops-paradise: {exc}", file=sys.stderr)
            return 2
        raise
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
