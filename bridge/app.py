"""The app factory: every resource is an AppKey with its own cleanup context; settings come in, not from import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from bridge import dashboard, edgelog, eventloop, store
from bridge import upgrade as upgrade_mod
from bridge.api import routes as api
from bridge.api.middleware import error_middleware
from bridge.catalog import CatalogError, load_catalog
from bridge.catalog.services import describe_service
from bridge.catalog_watch import watching
from bridge.clients import ClientManager
from bridge.errors import Unauthorized
from bridge.events import EventLog
from bridge.keys import CATALOG, ENGINE, EVENTS, HTTP, MANAGER, METRICS, PROXY, RUNTIME, SETTINGS
from bridge.lifecycle.health import HealthMonitor
from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.leader import Leadership, bridge_identity
from bridge.lifecycle.reconcile import reconcile
from bridge.lifecycle.routes import RouteTable
from bridge.mcp.connector import InstanceConnector
from bridge.observability.alerts import STORAGE_ALARM, AlertSender, StorageAlarm
from bridge.observability.metrics import BridgeMetrics
from bridge.ports import PortAllocator
from bridge.proxy import proxy
from bridge.proxy.sessions import SessionMap
from bridge.rollouts.runner import rollouts_ctx
from bridge.runtime import select_runtime
from bridge.runtime.base import Runtime
from bridge.settings import BridgeSettings, SettingsError, ensure_admin_token, load_settings, prepare_data_dir
from bridge.store import make_engine

log = logging.getLogger("bridge")
GIVEN_RUNTIME = web.AppKey("given_runtime", Runtime)  # create_app's runtime argument, read by runtime_ctx
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = make_engine(app[SETTINGS].db_url)
    app[ENGINE] = engine
    app[EVENTS] = EventLog(engine, keep=app[SETTINGS].events_keep)
    yield
    app[EVENTS].close()
    engine.dispose()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    # One pooled session for every upstream call; no total timeout (SSE), no decompression (relay bytes).
    # Idle upstream connections are dropped after 3 s: uvicorn (the MCP SDK's server) closes them after 5 s,
    # and reusing one just as the server closes it would fail a request.
    # A sandboxed instance's port is its Unix socket (bridge/mcp/connector.py).
    connector = InstanceConnector(limit=0, limit_per_host=0, keepalive_timeout=3, ttl_dns_cache=None)
    # No cookie jar: the proxy drops cookies both ways, so there is nothing to store or look up per request.
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        app[HTTP] = session
        yield


async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """The runtime given to ``create_app`` (tests: a fake), else the one the settings and machine select."""
    runtime = app.get(GIVEN_RUNTIME)
    if runtime is None:
        with store.session(app[ENGINE]) as db:
            installation = store.installation_id(db)
        runtime = await asyncio.to_thread(select_runtime, app[SETTINGS], app[CATALOG], installation)
    app[RUNTIME] = runtime
    yield
    await runtime.close()


def build_manager(app: web.Application) -> ClientManager:
    """The lifecycle and its facade, from the app's resources (tests build the same with a fake runtime)."""
    settings, catalog = app[SETTINGS], app[CATALOG]
    table = RouteTable(app[ENGINE], app[EVENTS], describe=lambda name: describe_service(catalog, name))
    ports = PortAllocator(app[ENGINE], settings.port_pool)
    instances = InstanceManager(
        settings=settings,
        table=table,
        runtime=app[RUNTIME],
        catalog=catalog,
        http=app[HTTP],
        ports=ports,
        metrics=app[METRICS],
    )
    return ClientManager(settings=settings, engine=app[ENGINE], ports=ports, instances=instances, events=app[EVENTS])


async def manager_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    manager = build_manager(app)
    await manager.load()
    app[MANAGER] = manager
    instances = manager.instances
    # With bridges sharing one database, the lease holder reconciles and monitors; the others follow.
    identity = await asyncio.to_thread(bridge_identity, settings.data_dir)
    leadership = Leadership(app[ENGINE], ttl=max(3 * settings.probe_interval, 2.0), holder=identity,
                            deferred=app.get(upgrade_mod.TAKING_OVER, False))  # the old bridge leads till it exits
    if await asyncio.to_thread(leadership.renew):
        await reconcile(instances)
    elif not leadership.deferred:
        log.warning("another bridge holds the monitor lease; following it (data from the shared database)")
    monitor = HealthMonitor(instances, leadership, follow=manager.refresh)
    manager.monitor = monitor
    async with eventloop.background(monitor.run(), "health monitor"):
        yield
    await monitor.close()
    await manager.close()


async def catalog_ctx(app: web.Application) -> AsyncIterator[None]:
    async with watching(app[CATALOG], app[SETTINGS], app[MANAGER]):  # catalog add/rm seen without a restart
        yield


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(
        {"status": "ok", "runtime": app[RUNTIME].name, "clients": len(app[MANAGER].client_ids())}
    )


def create_app(settings: BridgeSettings | None = None, runtime: Runtime | None = None) -> web.Application:
    """The whole bridge as an aiohttp app. ``runtime``: run instances on it instead of the runtime the settings
    select (JupyterHub's ``MockHub`` on ``MockSpawner``: tests run the real app over a fake runtime)."""
    settings = settings or load_settings()
    edgelog.install()  # aiohttp's parser errors are logged without the request's bytes (tokens)
    prepare_data_dir(settings)
    admin_token = ensure_admin_token(settings)
    try:
        catalog = load_catalog(settings.catalog, settings.data_dir)
    except CatalogError as exc:
        raise SettingsError(f"PARADISE_CATALOG: {exc}") from None
    app = web.Application(
        client_max_size=settings.max_body,
        middlewares=[error_middleware],  # the admin check is the API sub-app's own (api.add_routes)
    )
    app[SETTINGS] = settings
    app[CATALOG] = catalog
    if runtime is not None:
        app[GIVEN_RUNTIME] = runtime
    app[METRICS] = BridgeMetrics()  # a registry of this app's own, never the process-wide default
    app[PROXY] = proxy.McpProxy(
        host_allowed=settings.host_allowed, origin_allowed=settings.origin_allowed, hold=settings.start_timeout,
        metrics=app[METRICS],
    )
    app.cleanup_ctx.extend([database_ctx, http_ctx, runtime_ctx, manager_ctx, rollouts_ctx, proxy_ctx, alerts_ctx,
                            storage_ctx])
    app.cleanup_ctx.append(catalog_ctx)  # needs the manager; stops first
    # The MCP route first (the router tries routes in order, and this one carries the traffic), handled by
    # the proxy's own method: no lookup of the proxy per request.
    app.router.add_route("*", r"/c/{client_id}/{service}/{tail:.*}", app[PROXY].handle)
    app.router.add_get("/healthz", healthz)
    # The metrics name every client: admin token (Prometheus: authorization credentials) unless made public.
    metrics = metrics_handler if settings.metrics_public else admin_only(metrics_handler, admin_token)
    app.router.add_get("/metrics", metrics)
    dashboard.add_routes(app, admin_token)
    api.add_routes(app, admin_token)
    proxy.add_oauth_404s(app)
    return app


async def alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    """Warning and error events to PARADISE_ALERT_WEBHOOK, from a task of their own (never blocking)."""
    url = app[SETTINGS].alert_webhook
    if not url:
        yield
        return
    async with eventloop.background(AlertSender(url, app[HTTP], app[EVENTS]).run(), "alerts"):
        yield


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    """The storage alarm: storage.full / storage.recovered events as the data dir's disk fills and empties."""
    settings = app[SETTINGS]
    alarm = StorageAlarm(app[EVENTS], settings.data_dir, interval=settings.probe_interval)
    app[STORAGE_ALARM] = alarm
    async with eventloop.background(alarm.run(), "storage alarm"):
        yield


def admin_only(handler: Handler, admin_token: str) -> Handler:
    """``handler`` behind ``Authorization: Bearer <admin token>`` (401 JSON error without it)."""
    expected = admin_token.encode()

    async def guarded(request: web.Request) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise Unauthorized("missing or invalid admin token", headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return guarded


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text format (or OpenMetrics when the scraper asks)."""
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def proxy_ctx(app: web.Application) -> AsyncIterator[None]:
    manager = app[MANAGER]
    app[METRICS].watch(manager)
    sessions = SessionMap(app[ENGINE], manager.table.writer)
    await sessions.load()
    manager.on_delete.append(sessions.drop_client)
    app[PROXY].attach(manager, app[HTTP], sessions)
    yield
    app[PROXY].close()


def run(settings: BridgeSettings, *, upgrade: bool = False) -> None:
    """Serve until interrupted. Instances keep running after the bridge stops; the next one adopts them.
    ``upgrade``: take the listening socket over from the bridge running on this data dir (bridge/upgrade.py)."""
    app = create_app(settings)
    log.info(
        "DevOps Paradise Bridge on %s (data dir %s, %s event loop)", settings.public_url, settings.data_dir,
        eventloop.loop_name(),
    )
    app.on_startup.append(_record_running)
    app.on_startup.append(_freeze_heap)
    app.on_cleanup.append(_forget_running)
    loop = eventloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(upgrade_mod.serve(app, settings, upgrade=upgrade))
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


RUNNING_RECORD = "bridge.json"  # read by the CLI (bridge/cli/common.py) when no PARADISE_URL/HOST/PORT is set


async def _freeze_heap(_app: web.Application) -> None:
    """Keep the start-up heap (modules, settings, the catalog, the loaded state) out of every later garbage
    collection: without it each full collection walks those objects again and holds the proxy for its length."""
    gc.collect()
    gc.freeze()


async def _record_running(app: web.Application) -> None:
    """Where this bridge listens, for the CLI: a record in the data dir, replaced atomically."""
    settings = app[SETTINGS]
    path = settings.data_dir / RUNNING_RECORD
    tmp = path.with_name(f".{RUNNING_RECORD}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"url": settings.public_url, "pid": os.getpid()}) + "\n")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: serve anyway; the CLI then needs PARADISE_URL
        tmp.unlink(missing_ok=True)
        log.warning("could not write %s (%s); the CLI will not find this bridge by itself", path, exc.strerror)


async def _forget_running(app: web.Application) -> None:
    path = app[SETTINGS].data_dir / RUNNING_RECORD
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
