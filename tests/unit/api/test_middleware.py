"""The error middleware on a tiny app: every failure becomes a JSON error, never a traceback."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.api.middleware import admin_middleware, error_middleware
from bridge.errors import Conflict, Unavailable


async def crash(_request: web.Request) -> web.Response:
    raise RuntimeError("secret internals /etc/passwd")


async def conflict(_request: web.Request) -> web.Response:
    raise Conflict("already there", client_id="x")


async def busy(_request: web.Request) -> web.Response:
    raise Unavailable("starting", retry_after=7)


async def test_errors_render_as_json() -> None:
    app = web.Application(middlewares=[error_middleware, admin_middleware("tok", "/api/v1")])
    app.router.add_get("/crash", crash)
    app.router.add_get("/conflict", conflict)
    app.router.add_get("/busy", busy)
    app.router.add_get("/api/v1/x", conflict)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/crash")
        body = await resp.json()
        assert resp.status == 500 and body == {"error": {"code": "internal_error", "message": body["error"]["message"]}}
        assert "secret" not in await resp.text() and "Traceback" not in await resp.text()
        resp = await client.get("/conflict")
        assert resp.status == 409
        assert await resp.json() == {
            "error": {"code": "conflict", "message": "already there", "details": {"client_id": "x"}}
        }
        resp = await client.get("/busy")
        assert resp.status == 503 and resp.headers["Retry-After"] == "7"
        resp = await client.get("/api/v1/x")
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
        resp = await client.get("/api/v1/x", headers={"Authorization": "Bearer tok"})
        assert resp.status == 409
        resp = await client.post("/crash")
        assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"
