"""Peer headers are the bridge's alone: a client cannot point an instance at a "sibling" of its choosing.

The bridge tells an instance where its client's peers listen and with which key (X-Paradise-Peer-*, see
bridge/lifecycle/peers.py). A client that sends such headers itself (to make the quality instance send its
diff to a server of the attacker's, or to forge a peer's address) must have them dropped at the proxy: the
instance sees only what the bridge computed. Real bridge, real instances, the official MCP SDK client.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.helpers import PYTHON, ROOT, BridgeProcess, listener_pid, serving
from tests.integration.test_serena_impact import calc_workspace

pytestmark = [pytest.mark.slow]
FORGED_KEY = "forged-key-" + "x" * 32


class Trap:
    """A loopback listener that counts who connects: nothing of the bridge's should."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def trap() -> Iterator[Trap]:
    listener = Trap()
    yield listener
    listener.close()


def forged(trap: Trap) -> dict[str, str]:
    url = f"http://127.0.0.1:{trap.port}/mcp"
    return {
        "X-Paradise-Peer-Names": "serena,buddy",
        "X-Paradise-Peer-Serena-Url": url,
        "X-Paradise-Peer-Serena-Key": FORGED_KEY,
        "x-paradise-peer-buddy-url": url,  # any spelling: header names are case-insensitive
        "X-PARADISE-PEER-BUDDY-KEY": FORGED_KEY,
    }


@contextlib.asynccontextmanager
async def client_with(url: str, token: str, extra: dict[str, str]) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}", **extra}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=180)) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


def peer_catalog(path: Path) -> Path:
    """Two fixture servers that echo the headers they get; ``asker`` declares ``buddy`` as its peer."""
    base = f'["{PYTHON}", "-m", "tests.fixtures.mcp_server", "--port", "{{port}}"]'
    path.write_text(
        f'[services.buddy]\ncommand = {base}\nenv = {{ PYTHONPATH = "{ROOT}" }}\n\n'
        f'[services.asker]\ncommand = {base}\nenv = {{ PYTHONPATH = "{ROOT}" }}\npeers = ["buddy"]\n'
    )
    return path


async def test_a_client_cannot_set_or_forge_peer_headers(tmp_path: Path, trap: Trap) -> None:
    catalog = peer_catalog(tmp_path / "catalog.toml")
    with serving(BridgeProcess(tmp_path / "data", env={"PARADISE_CATALOG": str(catalog)})) as bridge:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        created = bridge.register("mallory", workspace, ["buddy", "asker"], wait=60)
        token = created["token"]
        buddy_port = bridge.state("mallory", "buddy")["port"]
        buddy_key = psutil.Process(listener_pid(buddy_port)).environ()["PARADISE_INSTANCE_KEY"]
        seen = {}
        for service in ("asker", "buddy"):
            async with client_with(bridge.mcp_url("mallory", service), token, forged(trap)) as client:
                result = await client.call_tool("headers", {})
            seen[service] = {k: v for k, v in result.structured_content.items() if k.startswith("x-paradise-peer-")}
    # The asker gets exactly what the bridge computed: its declared peer, at the peer's real port and key.
    assert seen["asker"] == {
        "x-paradise-peer-names": "buddy",
        "x-paradise-peer-buddy-url": f"http://127.0.0.1:{buddy_port}/mcp",
        "x-paradise-peer-buddy-key": buddy_key,
    }
    assert seen["buddy"] == {}  # it declares no peers: the client's forged ones are simply gone
    assert trap.connections == 0


async def test_a_forged_serena_address_never_reaches_the_quality_instance(tmp_path: Path, trap: Trap) -> None:
    with serving(BridgeProcess(tmp_path / "data")) as bridge:
        created = bridge.register("eve", calc_workspace(tmp_path / "ws"), ["quality"], wait=120)
        async with client_with(bridge.mcp_url("eve", "quality"), created["token"], forged(trap)) as client:
            result = await client.call_tool("analyze_changes", {})
    serena = result.structured_content["serena"]
    assert serena["used"] is False and "no Serena" in serena["reason"], serena
    assert trap.connections == 0  # the diff was never sent to the address the client made up
