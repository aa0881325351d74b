"""instances.keyguard over a tiny ASGI app, and the Serena launcher's patch on a real SDK MCPServer."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from bridge.mcp.protocol import INSTANCE_KEY_ENV, INSTANCE_KEY_HEADER
from instances import keyguard
from instances.keyguard import InstanceKeyError, InstanceKeyGuard, guard, take_instance_key
from instances.serena import guarded

KEY = "k" * 20 + "-the-right-one"


class RecordingApp:
    """The app behind the guard: answers 200 "inner" to HTTP and remembers every scope it saw."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"inner"})


async def request(app: Any, headers: dict[str, str] | list[tuple[str, str]] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        return await client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers)


def test_the_names_are_the_bridges() -> None:
    assert (keyguard.INSTANCE_KEY_ENV, keyguard.INSTANCE_KEY_HEADER) == (INSTANCE_KEY_ENV, INSTANCE_KEY_HEADER)


async def test_no_key_is_401_with_a_json_error_and_the_app_never_runs() -> None:
    inner = RecordingApp()
    response = await request(InstanceKeyGuard(inner, KEY))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "instance_key_missing"
    assert INSTANCE_KEY_HEADER in response.json()["error"]["message"]
    assert inner.scopes == []


@pytest.mark.parametrize("presented", ["wrong", "", KEY[:-1], KEY + "x", KEY.upper()])
async def test_a_wrong_key_is_403(presented: str) -> None:
    inner = RecordingApp()
    response = await request(InstanceKeyGuard(inner, KEY), {INSTANCE_KEY_HEADER: presented})
    assert response.status_code == 403
    error = response.json()["error"]
    assert set(response.json()) == {"error"} and set(error) == {"code", "message"}
    assert error["code"] == "instance_key_invalid"
    assert KEY not in response.text and inner.scopes == []


async def test_the_right_key_reaches_the_app_whatever_the_header_case() -> None:
    inner = RecordingApp()
    response = await request(InstanceKeyGuard(inner, KEY), {INSTANCE_KEY_HEADER.lower(): KEY})
    assert (response.status_code, response.text) == (200, "inner")
    assert len(inner.scopes) == 1


async def test_the_key_twice_is_refused_even_if_one_is_right() -> None:
    inner = RecordingApp()
    response = await request(InstanceKeyGuard(inner, KEY), [(INSTANCE_KEY_HEADER, KEY), (INSTANCE_KEY_HEADER, "x")])
    assert response.status_code == 403 and inner.scopes == []


async def asgi_call(app: Any, scope: dict[str, Any], incoming: dict[str, Any]) -> list[dict[str, Any]]:
    """Call ``app`` on ``scope`` the way a server does (every receive() gets ``incoming``); what it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_lifespan_passes_through_without_a_key() -> None:
    inner = RecordingApp()
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await asgi_call(InstanceKeyGuard(inner, KEY), lifespan, {"type": "lifespan.startup"})
    assert [scope["type"] for scope in inner.scopes] == ["lifespan"]


async def test_a_websocket_without_the_key_is_closed_before_the_handshake() -> None:
    inner = RecordingApp()
    connect = {"type": "websocket.connect"}
    sent = await asgi_call(InstanceKeyGuard(inner, KEY), {"type": "websocket", "path": "/mcp", "headers": []}, connect)
    assert sent == [{"type": "websocket.close", "code": 1008}] and inner.scopes == []
    with_key = {"type": "websocket", "path": "/mcp", "headers": [(INSTANCE_KEY_HEADER.lower().encode(), KEY.encode())]}
    await asgi_call(InstanceKeyGuard(inner, KEY), with_key, connect)
    assert [scope["type"] for scope in inner.scopes] == ["websocket"]


def test_the_key_is_taken_out_of_the_environment() -> None:
    environ = {INSTANCE_KEY_ENV: KEY, "PATH": "/usr/bin"}
    assert take_instance_key(environ) == KEY
    assert environ == {"PATH": "/usr/bin"}  # nothing the instance starts inherits it
    assert take_instance_key(environ) is None


@pytest.mark.parametrize("weak", ["", "short"])
def test_an_empty_or_short_key_is_refused_not_used(weak: str) -> None:
    with pytest.raises(InstanceKeyError, match=INSTANCE_KEY_ENV):
        take_instance_key({INSTANCE_KEY_ENV: weak})
    with pytest.raises(InstanceKeyError):
        InstanceKeyGuard(RecordingApp(), weak)


async def test_without_a_key_the_app_is_served_as_is_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    inner = RecordingApp()
    with caplog.at_level(logging.WARNING, logger="instances.keyguard"):
        app = guard(inner, None, server_name="hand-started server")
    assert app is inner
    assert "hand-started server" in caplog.text and INSTANCE_KEY_ENV in caplog.text
    assert guard(inner, KEY) is not inner


async def test_the_serena_patch_guards_what_the_sdk_builds_for_streamable_http() -> None:
    class SerenaLikeServer(MCPServer):  # a subclass, so the patch stays out of the SDK class other tests use
        pass

    guarded.guard_streamable_http_apps(SerenaLikeServer, KEY, guarded.load_keyguard())
    server = SerenaLikeServer("serena-like")
    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    assert isinstance(app, InstanceKeyGuard)
    assert (await request(app)).status_code == 401
    assert (await request(app, {INSTANCE_KEY_HEADER: "nope"})).status_code == 403
    assert type(MCPServer("plain").streamable_http_app()).__name__ == "Starlette"  # only the class given
    assert json.loads((await request(app)).text)["error"]["code"] == "instance_key_missing"
