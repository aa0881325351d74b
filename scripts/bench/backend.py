"""Minimal MCP backends for the proxy benchmark, and the bare aiohttp reverse proxy it is compared with.

    python scripts/bench/backend.py backend --port P     # JSON-response Streamable HTTP MCP server
    python scripts/bench/backend.py bare --port P --upstream 127.0.0.1:Q
    ... [--loop uvloop|asyncio]                          # default: the loop the bridge would use

The backend is deliberately tiny (aiohttp, no SDK) so that the benchmark measures the proxies, not the
backend: it answers initialize, ping, tools/list and an ``echo`` tools/call with JSON responses.
"""

from __future__ import annotations

import argparse
import json
import uuid

import aiohttp
from aiohttp import web

from bridge import eventloop
from bridge.mcp.protocol import PROBE_PROTOCOL_VERSION, SESSION_ID_HEADER

TOOLS = [{"name": "echo", "description": "echo", "inputSchema": {"type": "object"}}]


async def mcp(request: web.Request) -> web.Response:
    message = await request.json()
    method, rid = message.get("method"), message.get("id")
    if rid is None:
        return web.Response(status=202)
    headers = {}
    if method == "initialize":
        headers[SESSION_ID_HEADER] = uuid.uuid4().hex
        result = {
            "protocolVersion": message["params"].get("protocolVersion", PROBE_PROTOCOL_VERSION),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bench", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        text = json.dumps(message["params"].get("arguments", {}))
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        result = {}
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "result": result})
    return web.Response(text=body, content_type="application/json", headers=headers)


def backend_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/mcp", mcp)
    return app


def bare_proxy_app(upstream: str) -> web.Application:
    """The textbook aiohttp reverse proxy: one pooled session, forward method, headers and body."""
    app = web.Application()

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        # The textbook's usual tuning too: pooled, no decompression, no cookie jar.
        app["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        yield
        await app["session"].close()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with request.app["session"].request(
            request.method, f"http://{upstream}{request.rel_url}", headers=headers, data=await request.read()
        ) as resp:
            body = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
            return web.Response(status=resp.status, body=body, headers=out)

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["backend", "bare"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default=eventloop.loop_name())
    args = parser.parse_args()
    app = backend_app() if args.kind == "backend" else bare_proxy_app(args.upstream)
    loop = eventloop.new_event_loop(args.loop)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
