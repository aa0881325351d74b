"""What every ``devops-paradise`` subcommand shares: finding the bridge, calling its admin API, printing."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8100"


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


def say(line: str) -> None:
    print(line, flush=True)


RUNNING_RECORD = "bridge.json"  # DATA_DIR/bridge.json: where the running bridge listens (written by serve)


def data_dir() -> Path:
    return Path(os.environ.get("PARADISE_DATA_DIR", "~/.devops-paradise")).expanduser()


def bridge_url() -> str:
    """The bridge's admin base URL: PARADISE_URL, else PARADISE_HOST/PARADISE_PORT, else the data dir's record
    of the running bridge, else the default."""
    url = os.environ.get("PARADISE_URL")
    if url:
        return url.rstrip("/")
    if "PARADISE_HOST" not in os.environ and "PARADISE_PORT" not in os.environ:
        try:
            recorded = json.loads((data_dir() / RUNNING_RECORD).read_text()).get("url")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, str) and recorded.startswith("http://"):
            return recorded.rstrip("/")
    host = os.environ.get("PARADISE_HOST", "127.0.0.1")
    port = os.environ.get("PARADISE_PORT", "8100")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def call(method: str, path: str, **kwargs: Any) -> Any:
    url = bridge_url()
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
