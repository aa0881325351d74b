"""A stdio MCP server as an instance: Streamable HTTP on the instance's address, the instance key enforced.

Most servers in the registries (``mcp-server-git``, ``@modelcontextprotocol/server-filesystem``) speak only
stdio. The bridge routes, probes, heals and pauses instances over HTTP, so this adapter stands in front of
one: it starts the server as its child (the MCP SDK's stdio client), initializes it once, and serves what it
offers - tools, resources and their templates, prompts, completions, log levels - at ``{host}:{port}{path}``
with the SDK's Streamable HTTP server, behind ``instances/keyguard.py`` like the built-ins. Progress a tool
reports is passed on to the caller. Every HTTP session shares the one child (an instance serves one client).

When the child dies, a watchdog's ping fails and the adapter exits, so the bridge sees the instance die and
restarts it, rather than probing an adapter that answers ``initialize`` for a server that is gone.

    python -m instances.stdio_adapter --host H --port P [--path /mcp] [--cwd DIR] [--package DIR] -- PROGRAM ARGS
    python -m instances.stdio_adapter --host H --port P --installed /opt/packages      (a package's image)

In a package's image (images/package/Dockerfile) the program is the one the install's manifest names and its
arguments come in ``PARADISE_PACKAGE_ARGS`` (a JSON list: the catalog's ``args`` with the container's
placeholders), since the Docker runtime runs an image's own entrypoint, never a command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.lowlevel.server import Server
from pydantic import BaseModel

from instances.keyguard import InstanceKeyError, guard, take_instance_key

log = logging.getLogger("stdio-adapter")
WATCH_INTERVAL = 5.0  # seconds between pings of the child
WATCH_TIMEOUT = 20.0  # a ping unanswered this long means the child is stuck or gone
MANIFEST = "paradise-package.json"  # as bridge/catalog/packages.py writes it (the instance imports no bridge code)
ARGS_ENV = "PARADISE_PACKAGE_ARGS"

# method -> (request type, params type, result type, the upstream capability that must be present)
RELAYED: dict[str, tuple[type[BaseModel], type[BaseModel], type[BaseModel], str]] = {
    "tools/list": (types.ListToolsRequest, types.PaginatedRequestParams, types.ListToolsResult, "tools"),
    "tools/call": (types.CallToolRequest, types.CallToolRequestParams, types.CallToolResult, "tools"),
    "resources/list": (types.ListResourcesRequest, types.PaginatedRequestParams, types.ListResourcesResult,
                       "resources"),
    "resources/templates/list": (types.ListResourceTemplatesRequest, types.PaginatedRequestParams,
                                 types.ListResourceTemplatesResult, "resources"),
    "resources/read": (types.ReadResourceRequest, types.ReadResourceRequestParams, types.ReadResourceResult,
                       "resources"),
    "prompts/list": (types.ListPromptsRequest, types.PaginatedRequestParams, types.ListPromptsResult, "prompts"),
    "prompts/get": (types.GetPromptRequest, types.GetPromptRequestParams, types.GetPromptResult, "prompts"),
    "completion/complete": (types.CompleteRequest, types.CompleteRequestParams, types.CompleteResult,
                            "completions"),
    "logging/setLevel": (types.SetLevelRequest, types.SetLevelRequestParams, types.EmptyResult, "logging"),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m instances.stdio_adapter", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/mcp", help="MCP endpoint path (default /mcp)")
    parser.add_argument("--cwd", default=None, help="working directory of the server (default: the workspace)")
    parser.add_argument("--package", default=None, help="the installed package the program belongs to (named so "
                        "the sandbox mounts it whole)")
    parser.add_argument("--installed", default=None, help="run the one package installed in this directory (its "
                        f"manifest's program, arguments from ${ARGS_ENV})")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS: the stdio server")
    args = parser.parse_args(argv)
    args.program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if args.installed and not args.program:
        try:
            args.program = installed_program(Path(args.installed), os.environ.get(ARGS_ENV) or "[]")
        except ValueError as exc:
            parser.error(str(exc))
    if not args.program:
        parser.error("name the stdio server after --")
    return args


def installed_program(root: Path, args_json: str) -> list[str]:
    """The program of the one package installed under ``root``, then the arguments given as a JSON list."""
    manifests = sorted(root.glob(f"*/{MANIFEST}"))
    if len(manifests) != 1:
        raise ValueError(f"expected one installed package in {root}, found {len(manifests)}")
    program = json.loads(manifests[0].read_text()).get("argv")
    extra = json.loads(args_json)
    if not isinstance(program, list) or not isinstance(extra, list) or not all(
        isinstance(part, str) for part in [*program, *extra]
    ):
        raise ValueError(f"{manifests[0]} or ${ARGS_ENV} is not a list of strings")
    return [*program, *extra]


def relay(upstream: ClientSession, method: str) -> Callable[[Any, BaseModel], Awaitable[BaseModel]]:
    """A handler that sends the same request to the child and returns its answer (its progress passed on)."""
    request_type, _, result_type, _ = RELAYED[method]

    async def handle(ctx: Any, params: BaseModel) -> BaseModel:
        # The caller's _meta (its progress token, its protocol era's keys) is for this hop; the child's session
        # stamps its own, and its progress comes back to ``progress`` below.
        token = (getattr(params, "meta", None) or {}).get("progress_token")
        forward = params.model_copy(update={"meta": None})

        async def progress(done: float, total: float | None, message: str | None) -> None:
            if token is not None:
                await ctx.session.send_progress_notification(token, done, total, message,
                                                              related_request_id=ctx.request_id)

        return await upstream.send_request(request_type(params=forward), result_type,
                                           progress_callback=progress if token is not None else None)

    return handle


def relay_server(upstream: ClientSession, init: types.InitializeResult) -> Server:
    """A server offering exactly what the child offers, each request relayed to it."""
    info = init.server_info
    server: Server = Server(info.name, version=info.version or "", title=info.title, instructions=init.instructions)
    caps = init.capabilities
    for method, (_, params_type, _, capability) in RELAYED.items():
        if getattr(caps, capability, None) is not None:
            server.add_request_handler(method, params_type, relay(upstream, method))
    if caps.resources is not None and caps.resources.subscribe:
        for method, request_type, params_type in (
            ("resources/subscribe", types.SubscribeRequest, types.SubscribeRequestParams),
            ("resources/unsubscribe", types.UnsubscribeRequest, types.UnsubscribeRequestParams),
        ):
            RELAYED.setdefault(method, (request_type, params_type, types.EmptyResult, "resources"))
            server.add_request_handler(method, params_type, relay(upstream, method))
    return server


def child_environment(workspace: str | None) -> dict[str, str]:
    """The adapter's own environment (the sandbox's allow-list), the instance key already taken out of it.

    The workspace is a safe directory for git (as the quality instance's own git calls say with ``-c``): a
    sandbox may run as another uid than the workspace's owner, and git then refuses the repository as of
    "dubious ownership" - the git servers of the registries would fail on the client's own repository."""
    env = {k: v for k, v in os.environ.items() if k != "PARADISE_INSTANCE_KEY"}
    if workspace:
        count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        env |= {"GIT_CONFIG_COUNT": str(count + 1), f"GIT_CONFIG_KEY_{count}": "safe.directory",
                f"GIT_CONFIG_VALUE_{count}": workspace}
    return env


async def watch(upstream: ClientSession) -> None:
    """Return when the child stops answering pings (it died or hangs): the adapter then exits."""
    while True:
        await anyio.sleep(WATCH_INTERVAL)
        try:
            with anyio.fail_after(WATCH_TIMEOUT):
                await upstream.send_ping()
        except Exception as exc:  # any failure means the child is gone
            log.error("the stdio server stopped answering (%s); exiting so the bridge restarts the instance",
                      exc.__class__.__name__)
            return


async def serve(args: argparse.Namespace, key: str | None) -> int:
    cwd = args.cwd or os.environ.get("PARADISE_WORKSPACE") or None
    env = child_environment(os.environ.get("PARADISE_WORKSPACE") or cwd)
    params = StdioServerParameters(command=args.program[0], args=args.program[1:], env=env, cwd=cwd)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as upstream:
        with anyio.fail_after(120):
            init = await upstream.initialize()
        app = relay_server(upstream, init).streamable_http_app(streamable_http_path=args.path, host=args.host)
        config = uvicorn.Config(guard(app, key, server_name="stdio adapter"), host=args.host, port=args.port,
                                log_level="warning")
        web = uvicorn.Server(config)
        print(f"stdio adapter: {init.server_info.name} {init.server_info.version} ({' '.join(args.program)}) on "
              f"http://{args.host}:{args.port}{args.path}", file=sys.stderr, flush=True)
        async with anyio.create_task_group() as group:
            async def serve_then_stop() -> None:
                await web.serve()
                group.cancel_scope.cancel()

            group.start_soon(serve_then_stop)
            await watch(upstream)
            group.cancel_scope.cancel()
    return 1  # only a dead child ends the watch; a signal ends the process before this


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        key = take_instance_key()
    except InstanceKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return anyio.run(serve, args, key)
    except OSError as exc:
        print(f"error: cannot start {args.program[0]}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
