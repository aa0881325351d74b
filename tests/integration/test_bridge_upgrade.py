"""A bridge upgrade under continuous MCP calls loses none (issue 27.3): ``serve --upgrade`` takes the listening
socket over from the running bridge, which drains and exits; the new one adopts the same instances and leads.

Real bridges, real SDK servers as instances, the official SDK as clients of both protocol eras (session-era
``mode="legacy"`` with its GET stream, and sessionless), one of them in long streamed calls (progress events)
that are in flight when the old bridge stops accepting. Loopback only; about 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from bridge.mcp.protocol import INITIALIZED_NOTIFICATION, SESSION_ID_HEADER, initialize_request
from bridge.upgrade import HANDOVER_SOCKET
from tests.helpers import PYTHON, ROOT, BridgeProcess, fixture_catalog, listener_pid, mcp_client, serving
from tests.helpers import running_process_bridge as running_bridge
from tests.integration.test_health import wait_for_event

CLIENTS = {"ann": "legacy", "ben": "auto", "cid": "legacy"}  # cid: long streamed calls (count with progress)


@dataclass
class Load:
    """Calls made and failed per client, and whether to go on."""

    sent: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    boots: dict[str, set[str]] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def calls(self, bridge: BridgeProcess, client_id: str, token: str, mode: str, long: bool) -> None:
        self.sent[client_id], self.boots[client_id] = 0, set()
        async with mcp_client(bridge.mcp_url(client_id, "echo"), token, mode=mode) as client:
            while not self.stop.is_set():
                self.sent[client_id] += 1
                try:
                    await self._one(client, client_id, long)
                except Exception as exc:  # every kind of failure is what this test counts
                    self.failed.append(f"{client_id}: {exc!r}")

    async def _one(self, client, client_id: str, long: bool) -> None:  # type: ignore[no-untyped-def]
        if long:
            result = await client.call_tool("count", {"steps": 3, "delay": 0.2})
            assert not result.is_error and result.structured_content["steps"] == 3, result
            return
        text = f"{client_id}-{self.sent[client_id]}"
        result = await client.call_tool("echo", {"text": text})
        assert not result.is_error and result.content[0].text == text, result
        boot = (await client.call_tool("whoami", {})).structured_content
        assert boot["client"] == client_id, boot
        self.boots[client_id].add(boot["boot"])

    async def until(self, counts: dict[str, int], timeout: float = 30) -> None:
        """Until every client has made ``counts`` more calls (bounded)."""
        goal = {c: self.sent.get(c, 0) + n for c, n in counts.items()}
        deadline = time.monotonic() + timeout
        while any(self.sent.get(c, 0) < n for c, n in goal.items()):
            assert time.monotonic() < deadline, (self.sent, goal, self.failed)
            await asyncio.sleep(0.05)


def upgrade(bridge: BridgeProcess) -> subprocess.Popen[bytes]:
    """``serve --upgrade`` on the bridge's data dir and settings, logging to the same file."""
    with bridge.log.open("ab") as out:
        return subprocess.Popen(
            [PYTHON, "-m", "bridge", "serve", "--upgrade"], env=bridge.env, stdout=out, stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    return await asyncio.to_thread(proc.wait, timeout)


async def calls_through_upgrade(bridge: BridgeProcess, workspace: Path, before: int = 10) -> tuple[Load, float]:
    """Three clients calling without pause; ``serve --upgrade`` once each has made ``before`` calls; the load
    runs until the old bridge has exited and each client has made ``before`` calls on the new one. Returns the
    load and the seconds from the upgrade command to the old bridge's exit. ``bridge.proc`` becomes the new one."""
    tokens = {c: bridge.register(c, workspace, ["echo"])["token"] for c in CLIENTS}
    load = Load()
    tasks = [
        asyncio.create_task(load.calls(bridge, c, tokens[c], mode, long=c == "cid")) for c, mode in CLIENTS.items()
    ]
    try:
        await load.until(dict.fromkeys(CLIENTS, before))
        old = bridge.proc
        assert old is not None
        began = time.monotonic()
        bridge.proc = upgrade(bridge)
        assert await wait_exit(old) == 0, bridge.log.read_text()[-3000:]
        took = time.monotonic() - began
        await load.until(dict.fromkeys(CLIENTS, before))
    finally:
        load.stop.set()
        await asyncio.gather(*tasks)
    return load, took


async def test_an_upgrade_under_calls_of_both_eras_loses_no_call(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        old_pid = bridge.proc.pid
        load, _ = await calls_through_upgrade(bridge, workspace)
        assert load.failed == [], load.failed
        assert all(len(boots) == 1 for c, boots in load.boots.items() if c != "cid"), load.boots  # adopted
        assert bridge.proc.pid != old_pid and bridge.proc.poll() is None
        log = bridge.log.read_text()
        assert "hand-over: a new bridge serves" in log and "takes its place" in log, log[-3000:]
        assert (bridge.data_dir / HANDOVER_SOCKET).exists()  # the new bridge can be upgraded in turn
        # The new bridge leads: it heals a killed instance (only the lease holder heals).
        port = bridge.state("ann", "echo")["port"]
        server = psutil.Process(listener_pid(port))
        os.kill(server.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            server.wait(timeout=10)
        wait_for_event(bridge, "ann", "instance.died")
        assert bridge.wait_state("ann", "echo", {"running"}, timeout=30)["state"] == "running"


async def test_upgrade_without_a_running_bridge_starts_a_new_one(tmp_path) -> None:
    with running_bridge(tmp_path) as bridge:
        bridge.kill(signal.SIGTERM)
        bridge.proc = upgrade(bridge)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(bridge.url + "/healthz", timeout=1).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        assert httpx.get(bridge.url + "/healthz", timeout=5).status_code == 200
        assert "no running bridge answers" in bridge.log.read_text()


async def initialize(http: httpx.AsyncClient, url: str, token: str) -> dict[str, str]:
    """initialize as a 2025-06-18 client, on ``http``'s pooled connection; the session's headers."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    resp = await http.post(url, json=initialize_request("t", version="2025-06-18"), headers=headers)
    assert resp.status_code == 200, resp.text
    return {**headers, SESSION_ID_HEADER: resp.headers[SESSION_ID_HEADER], "MCP-Protocol-Version": "2025-06-18"}


async def call_headers(http: httpx.AsyncClient, url: str, session: dict[str, str]) -> httpx.Response:
    call = {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "headers", "arguments": {}}}
    return await http.post(url, json=call, headers=session)


async def long_call(http: httpx.AsyncClient, url: str, session: dict[str, str], opened: asyncio.Event) -> None:
    """A tools/call streaming progress for a minute: in flight on the old bridge until cancelled."""
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "count", "arguments": {"steps": 600, "delay": 0.1}}}
    async with http.stream("POST", url, json=call, headers=session) as resp:
        assert resp.status_code == 200
        opened.set()
        async for _ in resp.aiter_lines():
            pass


async def wait_log(bridge: BridgeProcess, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in bridge.log.read_text():
        assert time.monotonic() < deadline, bridge.log.read_text()[-3000:]
        await asyncio.sleep(0.05)


async def test_a_session_opened_on_the_old_bridge_during_the_hand_over_works_on_the_new_one(
    tmp_path, workspace
) -> None:
    with running_bridge(tmp_path) as bridge:
        token = bridge.register("dora", workspace, ["echo"])["token"]
        url = bridge.mcp_url("dora", "echo")
        async with (
            httpx.AsyncClient(timeout=90) as pinned, httpx.AsyncClient(timeout=90) as pinned2,
            httpx.AsyncClient(timeout=90) as busy,
        ):
            # A long call keeps the old bridge draining; ``pinned`` and ``pinned2`` keep a connection to it.
            opened = asyncio.Event()
            session = await initialize(busy, url, token)
            assert (await busy.post(url, json=INITIALIZED_NOTIFICATION, headers=session)).status_code == 202
            holding = asyncio.create_task(long_call(busy, url, session, opened))
            await opened.wait()
            for http in (pinned, pinned2):
                assert (await http.get(bridge.url + "/healthz")).status_code == 200
            old = bridge.proc
            bridge.proc = upgrade(bridge)
            await wait_log(bridge, "hand-over: a new bridge serves")
            # Opened on the old bridge (its connection), after the new one loaded the sessions; used on the new.
            session = await initialize(pinned, url, token)
            assert (await pinned2.post(url, json=INITIALIZED_NOTIFICATION, headers=session)).status_code == 202
            async with httpx.AsyncClient(timeout=90) as fresh:  # a new connection: the new bridge
                answer = asyncio.create_task(call_headers(fresh, url, session))
                await asyncio.wait({answer}, timeout=2)  # sent while the old bridge still drains
                holding.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await holding
                await busy.aclose()  # its connection closed: the old bridge's last request ends
                resp = await answer
        assert resp.status_code == 200, resp.text
        # The instance saw its own session, mapped by the new bridge (not the bridge's id, passed on unknown).
        assert SESSION_ID_HEADER.lower() in resp.text and session[SESSION_ID_HEADER] not in resp.text, resp.text
        assert await wait_exit(old) == 0


async def test_sigusr2_makes_the_bridge_start_its_successor(tmp_path, workspace) -> None:
    with running_bridge(tmp_path) as bridge:
        token = bridge.register("eve", workspace, ["echo"])["token"]
        old = bridge.proc
        assert old is not None
        old.send_signal(signal.SIGUSR2)
        assert await wait_exit(old) == 0, bridge.log.read_text()[-3000:]
        successor = psutil.Process(json.loads((bridge.data_dir / "bridge.json").read_text())["pid"])
        try:
            assert successor.pid != old.pid and "--upgrade" in successor.cmdline()
            async with mcp_client(bridge.mcp_url("eve", "echo"), token) as client:
                assert (await client.call_tool("echo", {"text": "next"})).content[0].text == "next"
        finally:
            for client in bridge.api("GET", "/clients").json():  # its instances go with it, as serving() does
                bridge.api("DELETE", f"/clients/{client['client_id']}")
            successor.terminate()  # started by the bridge this test started
            successor.wait(timeout=20)


def test_a_data_dir_too_long_for_the_hand_over_socket_still_serves(tmp_path) -> None:
    catalog = fixture_catalog(tmp_path / "catalog.toml")
    bridge = BridgeProcess(tmp_path / ("d" * 110), env={"PARADISE_CATALOG": str(catalog)})  # > 108: AF_UNIX limit
    with serving(bridge):
        assert httpx.get(bridge.url + "/healthz", timeout=5).status_code == 200
        assert "serve --upgrade cannot take over from this bridge" in bridge.log.read_text()
