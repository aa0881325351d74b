"""What every ``devops-paradise`` subcommand shares: finding the bridge, the typed admin client (``AdminClient``:
the client commands, ``check`` and setup all call the admin API through it, and get the bridge's own models
back or one ``AdminError`` carrying the bridge's JSON error), and printing."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bridge.models import CLIENT_ID, CLIENT_ID_RULE, ClientCreated, ClientView, InstanceView, McpConfig, TokenRotated

DEFAULT_URL = "http://127.0.0.1:8100"
M = TypeVar("M", bound=BaseModel)
READY_STATES = ("running", "idle")  # idle: stopped by the idle timeout, woken by the next request


class CliError(Exception):
    """A failure said in one line; ``exit_status`` is the command's (4: the client or thing was not found)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.exit_status = code


def client_name(value: str) -> str:
    """argparse type: a client id as the bridge accepts it, as a full match (a trailing newline is refused too)."""
    if not CLIENT_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: {CLIENT_ID_RULE}")
    return value


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


class AdminError(CliError):
    """The bridge said no: its JSON error (``code``, ``message``, ``details``) with the HTTP ``status``. No bridge
    answering is one too: ``status`` 0, ``code`` "unreachable". Said as before: ``STATUS: message``."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {message}" if status else message, code=4 if status == 404 else 1)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class WaitFailed(CliError):
    """``wait_ready`` gave up: an instance failed (``failed`` names it) or the time ran out (``failed`` None)."""

    def __init__(self, message: str, client: ClientView, failed: InstanceView | None = None) -> None:
        super().__init__(message)
        self.client, self.failed = client, failed


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` says of a bridge that answers."""

    runtime: str
    clients: int | None


def state_label(instance: InstanceView) -> str:
    return instance.state + (f" ({instance.step})" if instance.step else "")


class AdminClient:
    """The admin API (``/api/v1``) of one bridge, typed. ``base_url`` defaults to ``bridge_url()``; ``token`` to
    ``admin_token()``, read at each request (setup makes the client before the bridge writes its token)."""

    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        self.base_url = (base_url or bridge_url()).rstrip("/")
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call: the answer's JSON (None when empty), or ``AdminError``."""
        headers = {"Authorization": f"Bearer {self.token or admin_token()}"}
        try:
            with httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(10, read=660)) as http:
                resp = http.request(method, "/api/v1" + path, **kwargs)
        except httpx.TransportError as exc:
            raise AdminError(0, "unreachable", f"cannot reach the bridge at {self.base_url} "
                             f"({exc.__class__.__name__}); is it running?") from None
        if resp.status_code >= 400:
            raise error_of(resp)
        return resp.json() if resp.content else None

    def health(self) -> Health | None:
        """``/healthz`` (no token): None when no bridge answers there, or something else does."""
        try:
            resp = httpx.get(self.base_url + "/healthz", timeout=3)
            said = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(said, dict) or said.get("status") != "ok":
            return None
        return Health(runtime=str(said.get("runtime") or "unknown"), clients=said.get("clients"))

    def list_clients(self) -> list[ClientView]:
        answer = self.request("GET", "/clients")
        return [typed(ClientView, c) for c in (answer if isinstance(answer, list) else [answer])]

    def client(self, name: str) -> ClientView:
        return typed(ClientView, self.request("GET", f"/clients/{name}"))

    def add_client(self, name: str, workspace: Path, *, profile: str | None = None, services: list[str] | None = None,
                   languages: list[str] | None = None, wait: float = 0) -> ClientCreated:
        """Register (``wait``: seconds the bridge waits for readiness before it answers; 0 answers at once)."""
        body: dict[str, Any] = {"client_id": name, "workspace": str(workspace)}
        body |= {k: v for k, v in (("profile", profile), ("services", services), ("languages", languages)) if v}
        return typed(ClientCreated, self.request("POST", "/clients", json=body, params={"wait": wait}))

    def delete_client(self, name: str) -> None:
        self.request("DELETE", f"/clients/{name}")

    def restart_client(self, name: str) -> ClientView:
        return typed(ClientView, self.request("POST", f"/clients/{name}/restart"))

    def rotate_token(self, name: str) -> TokenRotated:
        return typed(TokenRotated, self.request("POST", f"/clients/{name}/token"))

    def mcp_config(self, name: str) -> McpConfig:
        return typed(McpConfig, self.request("GET", f"/clients/{name}/mcp-config"))

    def wait_ready(self, name: str, timeout: float, interval: float = 1.0,
                   progress: Callable[[str, str], None] | None = None) -> ClientView:
        """Poll until every instance runs; ``progress(service, state)`` at each change. ``WaitFailed`` when one
        fails or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            client = self.client(name)
            for inst in client.instances:
                if seen.get(inst.service) != (label := state_label(inst)):
                    seen[inst.service] = label
                    if progress:
                        progress(inst.service, label)
            if failed := next((i for i in client.instances if i.state == "failed"), None):
                raise WaitFailed(f"{failed.service} of {name} failed to start: {failed.last_error}", client, failed)
            if all(i.state in READY_STATES for i in client.instances):
                return client
            if time.monotonic() > deadline:
                waiting = ", ".join(f"{s} {label}" for s, label in seen.items())
                raise WaitFailed(f"instances of {name} not ready within {timeout:g}s ({waiting})", client)
            time.sleep(interval)


def error_of(resp: httpx.Response) -> AdminError:
    """The bridge's JSON error (``{"error": {"code", "message", "details"}}``); another server's answer keeps
    its first 200 characters as the message."""
    try:
        body = resp.json()["error"]
        code = str(body.get("code") or f"http_{resp.status_code}")
        details = body.get("details") if isinstance(body.get("details"), dict) else None
        return AdminError(resp.status_code, code, str(body["message"]), details)
    except (ValueError, KeyError, TypeError, AttributeError):
        return AdminError(resp.status_code, f"http_{resp.status_code}", resp.text[:200])


def typed(model: type[M], answer: Any) -> M:
    """The answer as the bridge's own model; an answer that is not one is an ``AdminError`` too."""
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise AdminError(200, "unexpected_answer", f"the answer is not a {model.__name__} "
                         f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']})") from None


def call(method: str, path: str, **kwargs: Any) -> Any:
    """One admin call to the bridge ``bridge_url()`` names: its JSON, or ``AdminError``."""
    return AdminClient().request(method, path, **kwargs)


# ---- rendering ---------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def show_client(client: ClientView) -> str:
    out = [f"client     {client.client_id}", f"workspace  {client.workspace}", f"profile    {client.profile}"]
    rows = [[i.service, state_label(i), i.version, str(i.port), str(i.restarts), i.url] for i in client.instances]
    out += ["", table(rows, ["SERVICE", "STATE", "VERSION", "PORT", "RESTARTS", "URL"])]
    for inst in client.instances:
        if inst.last_error:
            out += ["", f"{inst.service} last error: {inst.last_error}"]
            out += [f"  | {line}" for line in inst.last_log[-15:]]
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
