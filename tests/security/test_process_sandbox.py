"""Tenant code on the process runtime, tried as an attacker would, through a real bridge: it must not read the
admin token, the database, another tenant's workspace, /root or the bridge's environment, and what it
leaves behind when it crashes is killed. In CI (CI=true) a missing or unusable bubblewrap is a failure."""

from __future__ import annotations

import inspect
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bridge.runtime.sandbox import bwrap_usable
from tests.helpers import PYTHON, ROOT, BridgeProcess, mcp_client, serving
from tests.security import tenant_probes

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FAKE_SECRET = "bridge-shell-secret-4711"

# The tenant's code: it tries everything, writes what it got into its own workspace, leaves a child that
# escapes its process group and ignores SIGTERM (as a daemonising language server would), then serves MCP.
PROBES = inspect.getsource(tenant_probes)  # read() and listing(), put before ATTACK in the tenant's file
ATTACK = r"""
import json, os, runpy, subprocess, sys

targets = json.loads(os.environ["ATTACK_TARGETS"])
report = {name: read(path) for name, path in targets["read"].items()}
report |= {"ls_" + name: listing(path) for name, path in targets["list"].items()}
report["env"] = dict(os.environ)
environs = []
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    environs.append(read(f"/proc/{pid}/environ"))
report["proc_environs"] = environs
try:
    open("/usr/paradise-was-here", "w").close()
    report["write_usr"] = "WROTE"
except OSError as exc:
    report["write_usr"] = type(exc).__name__
leftover = subprocess.Popen([sys.executable, "-c", "import os, signal, time; os.setsid(); "
                             "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
report["uid"] = os.getuid()
with open(os.path.join(os.environ["PARADISE_WORKSPACE"], "attack.json"), "w") as out:
    json.dump(report, out)
sys.argv = ["mcp_server", "--port", sys.argv[1]]
runpy.run_module("tests.fixtures.mcp_server", run_name="__main__")
"""


@pytest.fixture(scope="module")
def sandbox_required() -> None:
    usable, reason = bwrap_usable()
    if not usable:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests, but {reason}")
        pytest.skip(f"sandbox tests skipped: {reason}")


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, sandbox_required: None) -> Iterator[dict[str, Path]]:
    base = tmp_path_factory.mktemp("sandbox")
    paths = {"data": base / "data", "tools": base / "tools", "alice": base / "alice", "bob": base / "bob"}
    for path in paths.values():
        path.mkdir()
    (paths["bob"] / "secret.txt").write_text("bob's private notes")
    (paths["data"] / "admin-token").write_text("the-admin-token-file\n")  # as a bridge without the env var has
    (paths["tools"] / "attack.py").write_text(PROBES + ATTACK)
    yield paths


@pytest.fixture(scope="module")
def sandboxed_bridge(tenants: dict[str, Path]) -> Iterator[BridgeProcess]:
    data = tenants["data"]
    targets = {
        "read": {
            "admin_token": str(data / "admin-token"),
            "database": str(data / "paradise.db"),
            "bob_workspace": str(tenants["bob"] / "secret.txt"),
            "root_bashrc": "/root/.bashrc",
            "root_gitconfig": "/root/.gitconfig",
            "bridge_log": str(data / "bridge.log"),
            "shadow": "/etc/shadow",
        },
        "list": {"data_dir": str(data), "bob": str(tenants["bob"]), "root": "/root", "run": "/run"},
    }
    placeholder_safe = json.dumps(targets).replace("{", "{{").replace("}", "}}")  # catalog env is a template
    catalog = tenants["tools"] / "catalog.toml"
    catalog.write_text(
        "[services.tenant]\n"
        f'command = ["{PYTHON}", "{tenants["tools"] / "attack.py"}", "{{port}}"]\n'
        f"env = {{ PYTHONPATH = \"{ROOT}\", ATTACK_TARGETS = '{placeholder_safe}' }}\n"
        'path = "/mcp"\n'
    )
    env = {"PARADISE_CATALOG": str(catalog), "PARADISE_RUNTIME": "process", "BRIDGE_FAKE_SECRET": FAKE_SECRET}
    proc = BridgeProcess(data, env=env)
    with serving(proc):
        yield proc


def label(bridge: BridgeProcess, client_id: str) -> dict:
    return json.loads((bridge.data_dir / "instances" / client_id / "tenant" / "runtime.json").read_text())


def family_pids(state: dict) -> set[int]:
    root = psutil.Process(state["sandbox"]["pid"])
    return {root.pid, *(child.pid for child in root.children(recursive=True))}


TOKENS: dict[str, str] = {}


def test_tenant_code_reaches_nothing_of_the_host(sandboxed_bridge: BridgeProcess, tenants: dict[str, Path]) -> None:
    for client_id in ("bob", "alice"):
        TOKENS[client_id] = sandboxed_bridge.register(client_id, tenants[client_id], ["tenant"])["token"]
    assert "sandbox" in label(sandboxed_bridge, "alice")  # the instance really runs under bubblewrap
    report = json.loads((tenants["alice"] / "attack.json").read_text())
    for target in ("admin_token", "database", "bob_workspace", "root_bashrc", "root_gitconfig", "bridge_log"):
        assert report[target] == "FileNotFoundError", (target, report[target])
    assert not report["shadow"].startswith("READ:")  # masked even though /etc is visible
    assert "admin-token" not in report["ls_data_dir"] and "paradise.db" not in report["ls_data_dir"]
    assert report["ls_bob"] == "FileNotFoundError"
    assert ".bashrc" not in report["ls_root"] and ".gitconfig" not in report["ls_root"]
    assert report["ls_run"] == "FileNotFoundError"  # no engine socket, no systemd or D-Bus sockets
    assert report["write_usr"] in ("OSError", "PermissionError")  # the system is read-only
    assert report["uid"] != 0
    env = report["env"]
    assert FAKE_SECRET not in json.dumps(env) and FAKE_SECRET not in json.dumps(report["proc_environs"])
    assert "BRIDGE_FAKE_SECRET" not in env and "PARADISE_ADMIN_TOKEN" not in env
    assert not {k for k in env if k.startswith("PARADISE_")} - {
        "PARADISE_CLIENT", "PARADISE_SERVICE", "PARADISE_WORKSPACE", "PARADISE_PROFILE", "PARADISE_INSTANCE_KEY",
        "PARADISE_INSTANCE_EGRESS",
    }  # fmt: skip
    assert env["PARADISE_INSTANCE_EGRESS"] == "none"  # the sandbox's network namespace has only its loopback
    assert env["PARADISE_CLIENT"] == "alice" and env["PARADISE_WORKSPACE"] == str(tenants["alice"])


async def test_the_sandboxed_instance_still_serves(sandboxed_bridge: BridgeProcess) -> None:
    async with mcp_client(sandboxed_bridge.mcp_url("alice", "tenant"), TOKENS["alice"]) as client:
        who = (await client.call_tool("whoami", {})).structured_content
    assert who["client"] == "alice" and who["leaked_admin_token"] == ""


def test_a_crash_leaves_no_children_and_heals(sandboxed_bridge: BridgeProcess, tenants: dict[str, Path]) -> None:
    state = label(sandboxed_bridge, "bob")
    pids = family_pids(state)
    assert len(pids) >= 2  # the server and the child that left its process group
    os.kill(state["sandbox"]["pid"], signal.SIGKILL)  # the server crashes
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
        assert time.monotonic() < deadline, "the crashed instance's children survived it"
        time.sleep(0.1)
    deadline = time.monotonic() + 30
    while (healed := sandboxed_bridge.state("bob", "tenant"))["restarts"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    healed = sandboxed_bridge.wait_state("bob", "tenant", {"running"}, timeout=30)
    assert healed["state"] == "running" and healed["restarts"] == 1
    assert label(sandboxed_bridge, "bob")["sandbox"]["pid"] not in pids


def test_delete_ends_the_family_even_after_the_leader_died(sandboxed_bridge: BridgeProcess) -> None:
    state = label(sandboxed_bridge, "alice")
    pids = family_pids(state)
    os.kill(state["pid"], signal.SIGKILL)  # bubblewrap itself dies; the sandbox does not die with it
    time.sleep(0.3)
    assert psutil.pid_exists(state["sandbox"]["pid"])
    assert sandboxed_bridge.api("DELETE", "/clients/alice").status_code == 204
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids):
        assert time.monotonic() < deadline, "delete left the instance's processes running"
        time.sleep(0.1)
