"""A hostile tenant on the process runtime, through a real bridge with real bubblewrap (issue 22).

The tenant's own code (as a test file that ``run_tests`` executes would) tries, inside its instance: to write
the host's kernel settings, to leave a setuid file owned by root, to make nested user namespaces, to see the
host's listening ports, to bind every port of the pool (bob's included), to fork, allocate and write past any
bound, and to write around its log's cap. It writes what it got into its workspace, then serves MCP while
still holding every port it bound. The host side checks what really happened. With a root bridge (as CI
runs it) the sandbox must not be root on the host; as a plain user the same attacks must fail too.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.runtime.sandbox import bwrap_usable
from tests.helpers import PYTHON, ROOT, BridgeProcess, mcp_client, serving

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SWAPPINESS = Path("/proc/sys/vm/swappiness")
LOG_CAP = 8 * 2**20  # instances/sandbox_init.py LOG_CAP

ATTACK = r'''
import errno, json, os, shutil, socket, subprocess, sys, runpy

ws, own_port = os.environ["PARADISE_WORKSPACE"], int(sys.argv[1])
report = {}

def error(exc):
    return errno.errorcode.get(exc.errno, type(exc).__name__) if isinstance(exc, OSError) else type(exc).__name__

for name in ("vm/swappiness", "kernel/core_pattern"):  # the host's kernel settings
    try:
        with open("/proc/sys/" + name, "w") as handle:
            handle.write("1\n" if name.startswith("vm") else "|/tmp/pwn %p\n")
        report[name] = "WROTE"
    except OSError as exc:
        report[name] = error(exc)
shutil.copy("/usr/bin/id", os.path.join(ws, "idsuid"))  # a setuid copy of id for anyone on the host
try:
    os.chmod(os.path.join(ws, "idsuid"), 0o4755)
    report["chmod"] = "ok"
except OSError as exc:
    report["chmod"] = error(exc)
report["unshare"] = subprocess.run(["unshare", "-Ur", "true"], capture_output=True).returncode
report["nice"] = os.nice(0)
try:
    os.nice(-10)  # back to the bridge's CPU priority, or above it
    report["renice"] = "ok"
except OSError as exc:
    report["renice"] = error(exc)
report["listening"] = sorted(
    int(fields[1].rsplit(":", 1)[1], 16)
    for fields in (line.split() for line in open("/proc/net/tcp").read().splitlines()[1:])
    if fields[3] == "0A"
)
first, last = (int(p) for p in os.environ["ATTACK_POOL"].split("-"))
held = []
for port in range(first, last + 1):  # every port of the pool but its own, held while it serves
    if port == own_port:
        continue
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        held.append(sock)
    except OSError:
        sock.close()
report["bound"] = len(held)
children = []
try:
    for _ in range(300):
        children.append(subprocess.Popen(["sleep", "60"]))
except OSError as exc:
    report["fork_error"] = error(exc)
report["forked"] = len(children)
for child in children:
    child.kill()
    child.wait()
try:
    block = bytearray(2 * 2**30)
    report["alloc"] = "ALLOCATED"
    del block
except MemoryError:
    report["alloc"] = "MemoryError"
filled = 0
fill = os.path.join(os.environ["HOME"], "fill")
try:
    with open(fill, "wb") as handle:
        for _ in range(256):
            handle.write(b"x" * 2**20)
            handle.flush()
            filled += 1
except OSError as exc:
    report["fill_error"] = error(exc)
report["filled_mib"] = filled
os.unlink(fill)
try:
    open("/proc/1/fd/1", "wb").close()
    report["pid1_log"] = "OPENED"
except OSError as exc:
    report["pid1_log"] = error(exc)
line = "y" * 1023 + "\n"
for _ in range(20 * 1024):  # 20 MiB of output
    sys.stdout.write(line)
sys.stdout.flush()
with open(os.path.join(ws, "attack.json"), "w") as out:
    json.dump(report, out)
sys.argv = ["mcp_server", "--port", str(own_port)]
runpy.run_module("tests.fixtures.mcp_server", run_name="__main__")
'''


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    usable, reason = bwrap_usable()
    if not usable:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests, but {reason}")
        pytest.skip(f"sandbox tests skipped: {reason}")
    base = tmp_path_factory.mktemp("attacks")
    for name in ("data", "tools", "mallory", "bob", "carol"):
        (base / name).mkdir()
    (base / "tools" / "attack.py").write_text(ATTACK)
    proc = BridgeProcess(base / "data", pool_size=12)
    pool = f"{proc.pool.start}-{proc.pool.stop - 1}"
    catalog = base / "tools" / "catalog.toml"
    catalog.write_text(
        "[services.tenant]\n"
        f'command = ["{PYTHON}", "{base / "tools" / "attack.py"}", "{{port}}"]\n'
        f'env = {{ PYTHONPATH = "{ROOT}", ATTACK_POOL = "{pool}" }}\n'
        'path = "/mcp"\n'
        "[services.plain]\n"
        f'command = ["{PYTHON}", "-m", "tests.fixtures.mcp_server", "--port", "{{port}}"]\n'
        f'env = {{ PYTHONPATH = "{ROOT}" }}\n'
        'path = "/mcp"\n'
    )
    proc.env |= {"PARADISE_CATALOG": str(catalog), "PARADISE_INSTANCE_MEMORY": "512m",
                 "PARADISE_INSTANCE_PIDS": "64", "PARADISE_INSTANCE_DISK": "32m"}  # fmt: skip
    with serving(proc):
        proc.base = base  # type: ignore[attr-defined]
        yield proc


@pytest.fixture(scope="module")
def report(bridge: BridgeProcess) -> dict:
    base: Path = bridge.base  # type: ignore[attr-defined]
    bridge.tokens = {"bob": bridge.register("bob", base / "bob", ["plain"])["token"]}  # type: ignore[attr-defined]
    bridge.swappiness = SWAPPINESS.read_text()  # type: ignore[attr-defined]
    bridge.register("mallory", base / "mallory", ["tenant"], wait=60)
    return json.loads((base / "mallory" / "attack.json").read_text())


def test_no_host_kernel_setting_changes(bridge: BridgeProcess, report: dict) -> None:
    assert report["vm/swappiness"] != "WROTE" and report["kernel/core_pattern"] != "WROTE", report
    assert SWAPPINESS.read_text() == bridge.swappiness  # type: ignore[attr-defined]
    assert report["unshare"] != 0  # no nested user namespaces


def test_no_root_owned_or_root_setuid_file_on_the_host(bridge: BridgeProcess, report: dict) -> None:
    planted = bridge.base / "mallory" / "idsuid"  # type: ignore[attr-defined]
    info = planted.stat()
    if os.geteuid() == 0:  # a root bridge: the tenant's files belong to its own unprivileged uid
        assert info.st_uid != 0 and info.st_gid != 0, "a tenant's file is root's on the host"
    else:
        assert info.st_uid == os.geteuid()
    if info.st_mode & 0o4000:
        assert info.st_uid != 0  # a setuid bit on a file that is not root's gives nothing


def test_no_host_port_seen_or_taken(bridge: BridgeProcess, report: dict) -> None:
    own = bridge.state("mallory", "tenant")["port"]
    assert bridge.port not in report["listening"]  # the bridge's port is invisible
    assert set(report["listening"]) <= {own}, report["listening"]
    assert report["bound"] == len(bridge.pool) - 1  # it "bound" every pool port... in its own namespace
    # ...so the pool is untouched: a new client registers, and bob's port still reaches bob alone.
    bridge.register("carol", bridge.base / "carol", ["plain"])  # type: ignore[attr-defined]  # 201, not 503
    assert bridge.wait_state("carol", "plain", {"running"})["state"] == "running"


async def test_another_tenants_traffic_never_reaches_the_impostor(bridge: BridgeProcess, report: dict) -> None:
    assert bridge.api("POST", "/clients/bob/restart").status_code in (200, 202, 204)
    bridge.wait_state("bob", "plain", {"running"}, timeout=30)
    for _ in range(3):
        async with mcp_client(bridge.mcp_url("bob", "plain"), bridge.tokens["bob"]) as client:  # type: ignore[attr-defined]
            who = (await client.call_tool("whoami", {})).structured_content
        assert who["client"] == "bob", who  # the real bob, never mallory's listener on bob's port number


def test_cpu_priority_stays_below_the_bridges(bridge: BridgeProcess, report: dict) -> None:
    assert report["nice"] >= 10 and report["renice"] == "EPERM", report


def test_forks_memory_and_disk_are_bounded(bridge: BridgeProcess, report: dict) -> None:
    assert report["forked"] < 64 and report.get("fork_error") == "EAGAIN", report
    assert report["alloc"] == "MemoryError"
    assert report["fill_error"] == "ENOSPC" and report["filled_mib"] <= 32, report
    data_dir_bytes = sum(p.stat().st_size for p in bridge.data_dir.rglob("*") if p.is_file())
    assert data_dir_bytes < 16 * 2**20  # the home is not on the data dir's disk


def test_the_log_is_capped_while_running(bridge: BridgeProcess, report: dict) -> None:
    assert report["pid1_log"] in ("EACCES", "EPERM"), report  # PID 1 is not dumpable: no way around the cap
    log = bridge.data_dir / "instances" / "mallory" / "tenant" / "instance.log"
    assert log.stat().st_size <= LOG_CAP + 2**20


def test_the_bridge_and_other_clients_keep_working(bridge: BridgeProcess, report: dict) -> None:
    assert bridge.api("GET", "/clients").status_code == 200
    assert bridge.api("POST", "/clients/bob/token").status_code == 200
    time.sleep(0.5)
    log = bridge.log.read_text()
    assert not re.search(r'" 5\d\d ', log), "the bridge answered a 5xx"
