"""Tenant code on the Docker runtime, tried as an attacker would, through a real bridge on a real engine.

Tenant A's own test file runs inside A's quality container (the quality instance's ``run_tests`` tool, called
through the bridge with the official MCP SDK client). It tries to read the bridge's admin token file and
database, tenant B's workspace, the host's /root and the engine socket; to write to the read-only system;
to find the bridge's secrets in its environment or any process's; and to reach B's instance port and the
bridge itself. Every outcome goes into a JSON file in A's workspace, which the host reads back and judges.
The container's security settings are checked through the engine. In CI (CI=true) a missing engine fails.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.mcp.protocol import INSTANCE_KEY_ENV
from tests.docker import conftest as docker_fixtures
from tests.docker.conftest import INSTANCE_UID, owned_workspace, remove_managed
from tests.helpers import BridgeProcess, mcp_client, serving
from tests.security import tenant_probes

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# The Docker fixtures of tests/docker (a real engine, the images built, this module's work dir; CI=true fails
# without them).
engine = docker_fixtures.engine
images = docker_fixtures.images
work = docker_fixtures.work
CLIENTS = {"tenant-a", "tenant-b"}
FAKE_SECRET = "bridge-shell-secret-docker-4711"
ADMIN_TOKEN_FILE_TEXT = "the-admin-token-file-docker\n"
BOB_SECRET = "tenant b's private notes"
ATTACK_FILE = "tests/test_tenant_attack.py"
REPORT_FILE = "attack.json"

# Tenant A's test file. ``TARGETS`` is filled in from the host: absolute host paths and ports it has no
# business reaching. It records what it got (never raising), writes the report next to itself, and then
# asserts nothing leaked, so run_tests' failure message names the outcomes too.
PROBES = inspect.getsource(tenant_probes)  # read() and listing(), put before ATTACK in the tenant's file
ATTACK = r"""
import errno, json, os, socket
from pathlib import Path

TARGETS = json.loads(__TARGETS__)


def write(directory):
    try:
        with open(os.path.join(directory, "paradise-was-here"), "w") as handle:
            handle.write("x")
        return "WROTE"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)


def connect(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"GET /mcp HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(3)
            return "CONNECTED:" + sock.recv(64).decode("latin-1", "replace")
    except OSError as exc:
        return type(exc).__name__


def engine_socket(path):
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(b"GET /version HTTP/1.0\r\n\r\n")
            return "CONNECTED:" + sock.recv(64).decode("latin-1", "replace")
    except OSError as exc:
        return type(exc).__name__


def proc_environs():
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")[:80]
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode("utf-8", "replace")
        except OSError as exc:
            cmd, environ = "?", type(exc).__name__
        found.append({"pid": int(pid), "cmd": cmd, "environ": environ})
    return found


def status_field(name):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def test_the_tenant_reaches_nothing():
    report = {name: read(path) for name, path in TARGETS["read"].items()}
    report |= {"ls_" + name: listing(path) for name, path in TARGETS["list"].items()}
    report |= {"write_" + name: write(path) for name, path in TARGETS["write"].items()}
    report |= {"connect_" + name: connect(host, port) for name, (host, port) in TARGETS["connect"].items()}
    report["engine_socket"] = engine_socket(TARGETS["engine_socket"])
    report["env"] = dict(os.environ)
    report["proc_environs"] = proc_environs()
    report["uid"] = os.getuid()
    report["cap_eff"] = status_field("CapEff")
    report["no_new_privs"] = status_field("NoNewPrivs")
    Path(__file__).resolve().parents[1].joinpath(__REPORT__).write_text(json.dumps(report))
    leaks = {k: v for k, v in report.items() if isinstance(v, str) and v.startswith(("READ:", "WROTE", "CONNECTED:"))}
    assert not leaks, "tenant code reached: " + json.dumps(leaks)
"""


@pytest.fixture(scope="module")
def bridge(engine: Any, images: dict[str, str], work: Path) -> Iterator[BridgeProcess]:
    remove_managed(engine, CLIENTS)
    data = work / "data"
    data.mkdir()
    # As a bridge without PARADISE_ADMIN_TOKEN leaves it; world-readable so only the mount keeps it away.
    (data / "admin-token").write_text(ADMIN_TOKEN_FILE_TEXT)
    (data / "admin-token").chmod(0o644)
    env = {
        "PARADISE_RUNTIME": "docker",
        "PARADISE_READY_TIMEOUT": "180",
        "PARADISE_START_TIMEOUT": "120",
        "PARADISE_PROBE_INTERVAL": "0.5",
        "PARADISE_WORKSPACE_ROOTS": str(work),
        "BRIDGE_FAKE_SECRET": FAKE_SECRET,
    }
    try:
        with serving(BridgeProcess(data, env=env)) as proc:
            yield proc
    finally:
        remove_managed(engine, CLIENTS)


@pytest.fixture(scope="module")
def tenants(bridge: BridgeProcess, work: Path) -> dict[str, dict[str, Any]]:
    """Both tenants registered with the quality service: {client_id: {"workspace", "token"}}."""
    found = {}
    for client_id, cls in (("tenant-b", "Beta"), ("tenant-a", "Alpha")):
        workspace = owned_workspace(work / client_id, cls)
        created = bridge.register(client_id, workspace, ["quality"], wait=150)
        found[client_id] = {"workspace": workspace, "token": created["token"]}
    secret = found["tenant-b"]["workspace"] / "secret.txt"
    secret.write_text(BOB_SECRET)
    os.chown(secret, INSTANCE_UID, INSTANCE_UID)  # readable by the containers' uid: only the mount protects it
    return found


def container_of(engine: Any, bridge: BridgeProcess, client_id: str) -> Any:
    assert bridge.state(client_id, "quality")["state"] == "running"
    return engine.containers.get(f"paradise-{client_id}-quality")  # the runtime's container name


def attack_targets(engine: Any, bridge: BridgeProcess, tenants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data = bridge.data_dir
    b_port = bridge.state("tenant-b", "quality")["port"]
    b_attrs = container_of(engine, bridge, "tenant-b").attrs
    b_container_port = int(next(iter(b_attrs["NetworkSettings"]["Ports"])).split("/")[0])
    b_ip = next(iter(b_attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    a_attrs = container_of(engine, bridge, "tenant-a").attrs
    a_gateway = next(iter(a_attrs["NetworkSettings"]["Networks"].values()))["Gateway"]
    connect = {
        "b_port_loopback": ("127.0.0.1", b_port),  # the container's own loopback, not the host's
        "bridge_loopback": ("127.0.0.1", bridge.port),
        "b_port_via_gateway": (a_gateway, b_port),  # the host as seen from A's network
        "bridge_via_gateway": (a_gateway, bridge.port),
    }
    if b_ip:
        connect["b_container_direct"] = (b_ip, b_container_port)  # across the per-client networks
    return {
        "read": {
            "admin_token": str(data / "admin-token"),
            "database": str(data / "paradise.db"),
            "bridge_log": str(data / "bridge.log"),
            "b_secret": str(tenants["tenant-b"]["workspace"] / "secret.txt"),
            "b_model": str(tenants["tenant-b"]["workspace"] / "src" / "model.py"),
            "root_gitconfig": "/root/.gitconfig",
            "shadow": "/etc/shadow",
        },
        "list": {"data_dir": str(data), "b_workspace": str(tenants["tenant-b"]["workspace"]), "root": "/root"},
        "write": {"root": "/", "usr": "/usr", "opt": "/opt", "etc": "/etc"},
        "connect": connect,
        "engine_socket": "/var/run/docker.sock",
    }


@pytest.fixture(scope="module")
def report(engine: Any, bridge: BridgeProcess, tenants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tenant A's test file run by A's quality instance through the bridge; its report, read on the host."""
    workspace = tenants["tenant-a"]["workspace"]
    targets = json.dumps(attack_targets(engine, bridge, tenants))
    attack = workspace / ATTACK_FILE
    attack.parent.mkdir()
    code = PROBES + textwrap.dedent(ATTACK)
    attack.write_text(code.replace("__TARGETS__", repr(targets)).replace("__REPORT__", repr(REPORT_FILE)))
    for path in (attack.parent, attack):
        os.chown(path, INSTANCE_UID, INSTANCE_UID)

    async def run() -> Any:
        async with mcp_client(bridge.mcp_url("tenant-a", "quality"), tenants["tenant-a"]["token"]) as client:
            return await client.call_tool(
                "run_tests", {"path": ATTACK_FILE, "coverage": False, "workers": 0, "detail": "full"}
            )

    result = asyncio.run(run())
    written = workspace / REPORT_FILE
    assert written.exists(), f"the tenant's test never ran: {result.content[0].text[:2000]}"
    found = json.loads(written.read_text())
    print(json.dumps({k: v for k, v in found.items() if k != "proc_environs"}, indent=1))  # shown with -s
    return found | {"run_tests": result.structured_content}


def test_the_tenant_reads_no_bridge_file_and_no_other_workspace(report: dict[str, Any]) -> None:
    for target in ("admin_token", "database", "bridge_log", "b_secret", "b_model"):
        assert report[target] == "FileNotFoundError", (target, report[target])  # not mounted at all
    assert not report["root_gitconfig"].startswith("READ:"), report["root_gitconfig"]  # the image's /root is 0700
    assert not report["shadow"].startswith("READ:"), report["shadow"]
    assert report["ls_data_dir"] == "FileNotFoundError" and report["ls_b_workspace"] == "FileNotFoundError"
    host_root = set(os.listdir("/root")) - {".bashrc", ".profile"}  # the image's own /root has those two
    seen = report["ls_root"]
    assert isinstance(seen, str) or not host_root & set(seen), f"the host's /root is visible: {seen}"


def test_the_tenant_cannot_write_the_system_or_reach_the_engine(report: dict[str, Any]) -> None:
    for target in ("write_root", "write_usr", "write_opt", "write_etc"):
        assert report[target] in ("EROFS", "EACCES", "EPERM"), (target, report[target])
    assert report["engine_socket"] in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError")
    assert report["uid"] != 0
    assert int(report["cap_eff"], 16) == 0, f"effective capabilities {report['cap_eff']}"
    assert report["no_new_privs"] == "1"


def test_the_tenant_finds_no_secret_of_the_bridge(report: dict[str, Any], bridge: BridgeProcess) -> None:
    env = report["env"]
    assert "BRIDGE_FAKE_SECRET" not in env and "PARADISE_ADMIN_TOKEN" not in env
    assert INSTANCE_KEY_ENV not in env, "the keyguard should have removed the key before tests ran"
    everything = json.dumps(env) + json.dumps(report["proc_environs"])
    for secret in (FAKE_SECRET, bridge.admin_token, ADMIN_TOKEN_FILE_TEXT.strip()):
        assert secret not in everything, f"a bridge secret reached tenant code: {secret[:12]}..."


def instance_key(engine: Any, bridge: BridgeProcess, client_id: str) -> str:
    """The key the bridge gave a container, read from its config through the engine (the host owner's view)."""
    env = container_of(engine, bridge, client_id).attrs["Config"]["Env"]
    keys = [e.split("=", 1)[1] for e in env if e.startswith(f"{INSTANCE_KEY_ENV}=")]
    assert keys, f"the bridge gave {client_id}'s container no instance key"
    return keys[0]


def test_the_tenant_cannot_find_another_tenants_instance_key(
    engine: Any, bridge: BridgeProcess, report: dict[str, Any]
) -> None:
    environs = report["proc_environs"]
    assert not any(instance_key(engine, bridge, "tenant-b") in p["environ"] for p in environs), "B's key reached A"


@pytest.mark.xfail(
    strict=True,
    reason="known gap (docs/security.md): the key reaches a container in its environment, and the tenant's code, "
    "running as the same uid, can read the initial environment of the container's init and of the server "
    "through /proc/<pid>/environ. It learns only its own instance's key, which opens nothing it does not "
    "already run in; delivering the key by a file read and deleted at start-up would close it.",
)
def test_the_tenant_cannot_find_its_own_instance_key(
    engine: Any, bridge: BridgeProcess, report: dict[str, Any]
) -> None:
    own = instance_key(engine, bridge, "tenant-a")
    holders = [(p["pid"], p["cmd"]) for p in report["proc_environs"] if own in p["environ"]]
    assert not holders, f"tenant code read its instance's key from /proc/<pid>/environ of (pid, argv): {holders}"


def test_the_tenant_reaches_neither_the_other_instance_nor_the_bridge(report: dict[str, Any]) -> None:
    reached = {k: v for k, v in report.items() if k.startswith("connect_") and v.startswith("CONNECTED:")}
    assert not reached, f"tenant A's code reached: {reached}"
    # The tenant's own verdict, as run_tests returned it through the bridge: its one test saw nothing leak.
    outcome = report["run_tests"]
    assert outcome["counts"] == {"total": 1, "passed": 1, "failed": 0, "skipped": 0, "errors": 0}, outcome["failures"]


def test_the_container_runs_locked_down(engine: Any, bridge: BridgeProcess, report: dict[str, Any]) -> None:
    for client_id in CLIENTS:
        attrs = container_of(engine, bridge, client_id).attrs
        host, config = attrs["HostConfig"], attrs["Config"]
        assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd"), (host["CapDrop"], host.get("CapAdd"))
        assert any(opt.startswith("no-new-privileges") for opt in host.get("SecurityOpt") or []), host["SecurityOpt"]
        assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
        assert host["NanoCpus"] > 0 and host["Memory"] > 0 and host["PidsLimit"] > 0
        assert config["User"] not in ("", "0", "root") and not config["User"].startswith(("0:", "root:"))
        bindings = [b for ports in host["PortBindings"].values() for b in ports]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings), bindings
        sources = {m.get("Source", "") for m in attrs["Mounts"]}
        assert not any(s.endswith("docker.sock") for s in sources), sources
        assert {m["Destination"] for m in attrs["Mounts"]} <= {"/workspace", "/state"}, attrs["Mounts"]
