"""A bridge stops promptly with a dashboard open: its live sockets are closed (1001) on shutdown instead of
holding the shutdown for aiohttp's whole timeout (a page left open in a browser used to keep it ~60 s)."""

import json
import signal
import time
from pathlib import Path

import aiohttp

from tests.helpers import fixture_bridge


async def test_sigterm_closes_open_dashboard_sockets_and_exits(tmp_path: Path) -> None:
    bridge = fixture_bridge(tmp_path).start()
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{bridge.url}/dashboard/ws") as ws:
            await ws.send_str(json.dumps({"type": "auth", "token": bridge.admin_token}))
            first = await ws.receive_json(timeout=10)
            assert first["type"] == "snapshot"
            began = time.monotonic()
            bridge.proc.send_signal(signal.SIGTERM)
            while True:  # snapshots may still arrive before the close
                message = await ws.receive(timeout=10)
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        bridge.proc.wait(timeout=10)
        assert time.monotonic() - began < 10
        assert bridge.proc.returncode == 0
    finally:
        bridge.kill()
