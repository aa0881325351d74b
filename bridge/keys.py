"""Every ``web.AppKey`` of the bridge in one place: what the app holds, typed, and who may read it."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from sqlalchemy.engine import Engine

from bridge.catalog import ServiceSpec
from bridge.clients import ClientManager
from bridge.events import EventLog
from bridge.observability.metrics import BridgeMetrics
from bridge.proxy.proxy import McpProxy
from bridge.runtime.base import Runtime
from bridge.settings import BridgeSettings

SETTINGS = web.AppKey("settings", BridgeSettings)
CATALOG = web.AppKey("catalog", dict[str, ServiceSpec])
ENGINE = web.AppKey("engine", Engine)
HTTP = web.AppKey("http", aiohttp.ClientSession)  # the one pooled session for every upstream call
RUNTIME = web.AppKey("runtime", Runtime)
EVENTS = web.AppKey("events", EventLog)
METRICS = web.AppKey("metrics", BridgeMetrics)
MANAGER = web.AppKey("manager", ClientManager)  # the facade every handler calls
PROXY = web.AppKey("proxy", McpProxy)
ADMIN_TOKEN = web.AppKey("admin_token", str)
