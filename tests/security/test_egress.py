"""PARADISE_INSTANCE_EGRESS on the process runtime, with real bubblewrap and slirp4netns: under ``none`` a
sandbox has no route out; under ``all`` it reaches an address outside its namespace, but never the host's
loopback (where the bridge and every other listener of the host live), and it gets the host's CA settings.

Traffic stays on this machine: "outside" is a TEST-NET-1 address (192.0.2.0/24, never routed) this test
adds to the host's loopback device, so the NAT's connection ends in the host's own stack. Needs root (to add
the address); in CI (CI=true, root) a missing bubblewrap or slirp4netns is a failure, not a skip."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.runtime.base import InstanceSpec
from bridge.runtime.grants import SandboxUids
from bridge.runtime.process import ProcessRuntime
from bridge.runtime.sandbox import Sandbox, bwrap_usable
from tests.helpers import free_block

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OUTSIDE = "192.0.2.77"  # TEST-NET-1, added to the host's lo below (a host address outside 127/8)

# Inside the sandbox: try the outside listener and the host's loopback listener through the NAT's gateway
# (10.0.2.2 is the host's 127.0.0.1 unless slirp4netns disables that), then serve so the runtime sees it up.
PROBE = r"""
import json, os, socket, sys
def reach(host, port):
    try:
        with socket.create_connection((host, port), timeout=3) as s:
            return s.recv(16).decode()
    except OSError as exc:
        return type(exc).__name__
routes = open("/proc/net/route").read().splitlines()[1:]
ca = os.environ.get("SSL_CERT_FILE")
report = {
    "default_route": any(line.split()[1] == "00000000" for line in routes),
    "outside": reach(sys.argv[2], int(sys.argv[3])),
    "host_loopback": reach("10.0.2.2", int(sys.argv[4])),
    "egress": os.environ.get("PARADISE_INSTANCE_EGRESS"),
    "ca_readable": bool(ca) and os.access(ca, os.R_OK),
}
with open(os.path.join(os.environ["PARADISE_WORKSPACE"], "egress.json"), "w") as out:
    json.dump(report, out)
import http.server
http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), bind="127.0.0.1")
"""


@pytest.fixture(scope="module")
def prerequisites() -> None:
    missing = [reason for usable, reason in [bwrap_usable()] if not usable]
    missing += [] if shutil.which("slirp4netns") else ["slirp4netns is not installed"]
    missing += [] if os.geteuid() == 0 else ["adding a test address needs root"]
    if missing:
        if IN_CI:
            pytest.fail(f"CI must run the egress tests, but {'; '.join(missing)}")
        pytest.skip("; ".join(missing))


def _serve(server: socket.socket, greeting: bytes) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.sendall(greeting)


@pytest.fixture(scope="module")
def listeners(prerequisites: None) -> Iterator[tuple[int, int]]:
    """(outside port, loopback port): one listener on the test's host address, one on the host's 127.0.0.1."""
    subprocess.run(["ip", "addr", "add", f"{OUTSIDE}/32", "dev", "lo"], check=True)
    try:
        servers = []
        for host, greeting in ((OUTSIDE, b"outside"), ("127.0.0.1", b"loopback")):
            server = socket.create_server((host, 0))
            threading.Thread(target=_serve, args=(server, greeting), daemon=True).start()
            servers.append(server)
        yield servers[0].getsockname()[1], servers[1].getsockname()[1]
        for server in servers:
            server.close()
    finally:
        subprocess.run(["ip", "addr", "del", f"{OUTSIDE}/32", "dev", "lo"], check=False)


async def probe(tmp_path: Path, egress: str, ports: tuple[int, int]) -> dict:
    data, workspace = tmp_path / "data", tmp_path / "ws"
    data.mkdir()
    workspace.mkdir()
    (data / "probe.py").write_text(PROBE)
    port = free_block(1)
    command = [sys.executable, str(data / "probe.py"), str(port), OUTSIDE, *map(str, ports)]
    spec = InstanceSpec(client_id="alice", service="probe", port=port, workspace=workspace,
                        instance_dir=data / "instances" / "alice" / "probe", command=command)  # fmt: skip
    runtime = ProcessRuntime(data / "instances", sandbox=Sandbox(data / "state", shared=(data,)),
                             uids=SandboxUids.parse(data, "300000-300009"), egress=egress)  # fmt: skip
    state = await runtime.start(spec)
    try:
        for _ in range(200):
            if (workspace / "egress.json").exists():
                return json.loads((workspace / "egress.json").read_text())
            await asyncio.sleep(0.05)
        raise AssertionError(f"the probe wrote nothing: {await runtime.logs(state)}")
    finally:
        await runtime.stop(state, grace=2)
        if "nat" in state:
            assert not os.path.exists(f"/proc/{state['nat']['pid']}"), "slirp4netns outlived its sandbox"


async def test_none_has_no_route_out(tmp_path: Path, listeners: tuple[int, int]) -> None:
    report = await probe(tmp_path, "none", listeners)
    assert report["egress"] == "none"
    assert not report["default_route"]
    assert report["outside"] != "outside"
    assert report["host_loopback"] != "loopback"


async def test_all_reaches_out_but_never_the_hosts_loopback(tmp_path: Path, listeners: tuple[int, int]) -> None:
    report = await probe(tmp_path, "all", listeners)
    assert report["egress"] == "all"
    assert report["default_route"]
    assert report["outside"] == "outside"  # through slirp4netns's NAT
    assert report["host_loopback"] != "loopback"  # --disable-host-loopback: not the bridge, not the pool
    if os.environ.get("SSL_CERT_FILE"):
        assert report["ca_readable"]  # the host's CA, for npm audit / pip-audit behind a corporate proxy
