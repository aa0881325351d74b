"""Shared test helpers: a real bridge process, free ports, and a real MCP SDK client through the bridge."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psutil
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bridge.runtime.base import port_is_free

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_block(size: int) -> int:
    """A first port such that [first, first + size] are all free (bounded tries)."""
    for _ in range(200):
        # Below Linux's ephemeral range (32768+), where outgoing connections in TIME_WAIT can hold a port.
        first = random.randrange(20000, 32000 - size)
        if all(port_is_free(p) for p in range(first, first + size + 1)):
            return first
    raise RuntimeError("no free block of ports on 127.0.0.1")


def fixture_catalog(path: Path) -> Path:
    """A catalog whose services are the fixture MCP server in its various modes."""
    base = f'["{PYTHON}", "-m", "tests.fixtures.mcp_server", "--port", "{{port}}"'
    modes = {
        "echo": "normal",
        "crashy": "crash",
        "hung": "never-ready",
        "slow": "slow-start",
        "legacy": "legacy-sse",
        "flaky": "crash-after",
    }
    lines = []
    for name, mode in modes.items():
        lines += [
            f"[services.{name}]",
            f'command = {base}, "--mode", "{mode}"]',
            f'env = {{ PYTHONPATH = "{ROOT}" }}',
            'path = "/sse"\ntransport = "sse"' if mode == "legacy-sse" else 'path = "/mcp"',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def serena_venv_path() -> Path:
    """Where the tests' Serena is installed: PARADISE_SERENA_VENV, else the user's cache (so runs reuse it)."""
    configured = os.environ.get("PARADISE_SERENA_VENV")
    return Path(configured) if configured else Path.home() / ".cache" / "devops-paradise" / "serena-venv"


def bridge_with_serena(base: Path, ready_timeout: float = 120) -> BridgeProcess:
    """A bridge (not started yet) that runs Serena from serena_venv_path(), with its data in ``base``."""
    env = {"PARADISE_SERENA_VENV": str(serena_venv_path()), "PARADISE_READY_TIMEOUT": str(ready_timeout)}
    return BridgeProcess(base / "data", env=env)


def fixture_bridge(base: Path, **env: str) -> BridgeProcess:
    """A bridge (not started yet) serving the fixture catalog, with its data in ``base``; ``env`` adds settings."""
    catalog = fixture_catalog(base / "catalog.toml")
    return BridgeProcess(base / "data", env={"PARADISE_CATALOG": str(catalog), **env})


def bridge_settings_env(bridge: BridgeClient, env: dict[str, str] | None) -> dict[str, str]:
    """The environment a test bridge reads its settings from: this one's, the bridge's ports, data dir and
    admin token, quick probes, then ``env``."""
    return {
        **os.environ,
        "PARADISE_DATA_DIR": str(bridge.data_dir),
        "PARADISE_PORT": str(bridge.port),
        "PARADISE_PORT_RANGE": f"{bridge.pool.start}-{bridge.pool.stop - 1}",
        "PARADISE_ADMIN_TOKEN": bridge.admin_token,
        "PARADISE_RUNTIME": "process",
        "PARADISE_PROBE_INTERVAL": "0.5",
        "PARADISE_READY_TIMEOUT": "20",
        "PARADISE_START_TIMEOUT": "15",
        "PARADISE_STOP_GRACE": "2",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }


class BridgeClient:
    """What tests call on a bridge, whatever runs it (a process here, a thread in tests/inprocess/): its URL,
    its admin API with the admin token, and registering clients. Subclasses set ``port``, ``pool``,
    ``admin_token``, ``data_dir`` and ``log``."""

    port: int
    pool: range
    admin_token: str
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"} | kwargs.pop("headers", {})
        return httpx.request(method, self.url + "/api/v1" + path, headers=headers, timeout=90, **kwargs)

    def register(self, client_id: str, workspace: Path, services: list[str], wait: float = 30) -> dict[str, Any]:
        resp = self.api(
            "POST",
            "/clients",
            params={"wait": wait},
            json={"client_id": client_id, "workspace": str(workspace), "services": services},
        )
        assert resp.status_code == 201, resp.text
        return resp.json()

    def state(self, client_id: str, service: str) -> dict[str, Any]:
        client = self.api("GET", f"/clients/{client_id}").json()
        return next(i for i in client["instances"] if i["service"] == service)

    def wait_state(self, client_id: str, service: str, states: set[str], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            inst = self.state(client_id, service)
            if inst["state"] in states or time.monotonic() > deadline:
                return inst
            time.sleep(0.2)

    def mcp_url(self, client_id: str, service: str) -> str:
        return f"{self.url}/c/{client_id}/{service}/mcp"

    def delete_all_clients(self) -> None:
        """Every client deleted (their instances stop), as a module's bridge is left."""
        with contextlib.suppress(Exception):
            for client in self.api("GET", "/clients").json():
                self.api("DELETE", f"/clients/{client['client_id']}")


class BridgeProcess(BridgeClient):
    """``python -m bridge serve`` as a real child process, on loopback ports of its own."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, pool_size: int = 30) -> None:
        self.data_dir = data_dir
        first = free_block(pool_size + 1)
        self.port = first
        self.pool = range(first + 1, first + 1 + pool_size)
        self.admin_token = "test-admin-token-" + str(first)
        self.env = bridge_settings_env(self, env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "bridge.log"

    def start(self, timeout: float = 20) -> BridgeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bridge", "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"bridge did not answer /healthz:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


FAST_HEALTH = {
    "PARADISE_PROBE_INTERVAL": "0.5",
    "PARADISE_PROBE_TIMEOUT": "1",
    "PARADISE_PROBE_FAILURES": "2",
    "PARADISE_RESTART_LIMIT": "3",
    "PARADISE_RESTART_WINDOW": "120",
    "PARADISE_RESTART_BACKOFF": "0.2",
}


def fast_health_env(base: Path, extra_catalog: str = "", **env: str) -> dict[str, str]:
    """Settings for a bridge on the fixture catalog (plus ``extra_catalog``) that notices and heals quickly."""
    catalog = fixture_catalog(base / "catalog.toml")
    catalog.write_text(catalog.read_text() + extra_catalog)
    return {"PARADISE_CATALOG": str(catalog), **FAST_HEALTH, **env}


@contextlib.contextmanager
def running_process_bridge(base: Path, extra_catalog: str = "", **env: str) -> Iterator[BridgeProcess]:
    """A real bridge process on the fixture catalog with quick health checks, serving while in the block."""
    with serving(BridgeProcess(base / "data", env=fast_health_env(base, extra_catalog, **env))) as proc:
        yield proc


@contextlib.contextmanager
def serving(proc: BridgeProcess) -> Iterator[BridgeProcess]:
    """Start ``proc``; afterwards delete its clients (instances stop), stop it, and kill what it left."""
    proc.start()
    try:
        yield proc
    finally:
        proc.delete_all_clients()
        proc.kill(signal.SIGTERM)
        kill_leftovers(proc.data_dir)


@contextlib.asynccontextmanager
async def mcp_client(
    url: str, token: str | None, read_timeout: float = 120, mode: str = "auto"
) -> AsyncIterator[Client]:
    """The official MCP SDK client, speaking Streamable HTTP with the client token as a bearer token.

    ``mode="legacy"`` makes it a session-era client (initialize handshake, Mcp-Session-Id), as Claude Code is
    with servers that do not speak 2026-07-28."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=read_timeout)) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


def instance_pid(bridge: BridgeProcess, client_id: str, service: str) -> int:
    import json

    label = bridge.data_dir / "instances" / client_id / service / "runtime.json"
    return int(json.loads(label.read_text())["pid"])


def listener_pid(port: int) -> int:
    """The process that listens on 127.0.0.1:port: the server itself, however deep in a sandbox it runs.

    A sandboxed server listens in its sandbox's own network namespace, which the host's socket table does not
    show: each process's listening sockets are read from its own ``/proc/<pid>/net/tcp``. A sandbox's PID 1
    (instances/sandbox_init.py) listens on a sibling's port only to relay it, so it is never taken for it.
    A server that is just (re)starting gets a few seconds to listen."""
    deadline = time.monotonic() + 5
    while True:
        for proc in psutil.process_iter(["cmdline"]):
            if "instances.sandbox_init" in (proc.info["cmdline"] or []):
                continue
            with contextlib.suppress(OSError, psutil.Error):
                if _listening_inodes(proc.pid, port) & _socket_inodes(proc.pid):
                    return proc.pid
        if time.monotonic() > deadline:
            raise LookupError(f"nothing listens on port {port}")
        time.sleep(0.1)


def _listening_inodes(pid: int, port: int) -> set[str]:
    rows = (line.split() for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:])
    return {row[9] for row in rows if row[3] == "0A" and int(row[1].rsplit(":", 1)[1], 16) == port}


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def instance_socket(bridge: BridgeProcess, client_id: str, service: str) -> Path:
    """Where a sandboxed instance is reached: the Unix socket in its run directory (its runtime.json says)."""
    label = bridge.data_dir / "instances" / client_id / service / "runtime.json"
    return Path(json.loads(label.read_text())["socket"])


def socket_request(path: Path, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> httpx.Response:
    """One HTTP/1.1 request over an instance's Unix socket, past the relay's READY byte, as the bridge sends
    it (bridge/runtime/address.py); the answer read to the end (Connection: close)."""
    import socket

    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)  # a deep tmp path is too long for a socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        try:
            sock.connect(f"/proc/self/fd/{directory}/{path.name}")
        finally:
            os.close(directory)
        assert sock.recv(1) == b"+", "the relay did not say the server took the connection"
        head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": str(len(body)),
                                                        "Connection": "close"}.items())  # fmt: skip
        sock.sendall(f"{method} {target} HTTP/1.1\r\n{head}\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, content = data.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    answer_headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines if ":" in line]
    if dict((k.lower(), v) for k, v in answer_headers).get("transfer-encoding") == "chunked":
        content = _unchunk(content)
    return httpx.Response(int(status_line.split()[1]), headers=answer_headers, content=content)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + rest[:size], rest[size + 2 :]
    return out


def crash_instance(bridge: BridgeProcess, client_id: str, service: str) -> None:
    """kill -9 of the instance's server process, as a crash or the OOM killer would end it."""
    os.kill(listener_pid(bridge.state(client_id, service)["port"]), signal.SIGKILL)


def kill_leftovers(data_dir: Path) -> None:
    """Whatever a test left running (it should not), so one failure does not leak into the next."""
    for label in data_dir.glob("instances/*/*/runtime.json"):
        with contextlib.suppress(Exception):
            state = json.loads(label.read_text())
            proc = psutil.Process(state["pid"])
            if abs(proc.create_time() - state["create_time"]) < 0.05:
                os.killpg(proc.pid, signal.SIGKILL)


def write_geometry_workspace(workspace: Path) -> Path:
    """A small Python project with one class, ``geometry.shapes.Circle``, for Serena to find."""
    package = workspace / "geometry"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from geometry.shapes import Circle\n\n__all__ = ['Circle']\n")
    (package / "shapes.py").write_text(
        "import math\n\n\n"
        "class Circle:\n"
        '    """A circle."""\n\n'
        "    def __init__(self, radius: float) -> None:\n"
        "        self.radius = radius\n\n"
        "    def area(self) -> float:\n"
        "        return math.pi * self.radius**2\n"
    )
    return workspace


PYTEST_PACKAGES = ("pytest", "py", "pluggy", "iniconfig", "packaging", "pygments")


def lean_venv(root: Path, packages: tuple[str, ...] = PYTEST_PACKAGES) -> Path:
    """A workspace `.venv` holding only `packages` (linked from this interpreter's site-packages, with
    their metadata so entry points load): a project's own environment, without the plugins this repo's
    development environment autoloads into every pytest process.  Returns the venv's python."""
    import subprocess
    import sys

    import pytest as pytest_module

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    site = Path(pytest_module.__file__).parent.parent
    deps = root / ".venv" / "linked"
    deps.mkdir()
    names = {p.lower().replace("-", "_") for p in packages}
    for entry in site.iterdir():
        stem = entry.name.split("-", 1)[0].removesuffix(".py").lower()
        if stem in names or stem.lstrip("_") in names:  # the package, its dist-info, _pytest beside pytest
            (deps / entry.name).symlink_to(entry)
    venv_site = next((root / ".venv" / "lib").glob("python3*/site-packages"))
    (venv_site / "linked.pth").write_text(str(deps) + "\n", encoding="utf-8")
    return root / ".venv" / "bin" / "python"
