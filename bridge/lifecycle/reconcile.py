"""Start-up reconciliation (as JupyterHub's init_spawners): stored intent against what the runtime runs.

For every instance the database knows: adopt it if the runtime still runs it on its port and it answers
MCP (sessions opened before a bridge crash keep working), else start it again on its port. Instances the
runtime labels as ours but the database does not know are orphans and are removed. Idle and failed
instances are left as they are; paused ones stay frozen. Every instance is checked concurrently and on its
own: one failing runtime call is logged and reported, never the end of start-up. One event says what was done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bridge.lifecycle.instances import InstanceManager
from bridge.lifecycle.routes import Route
from bridge.mcp.client import ProbeFailed, probe
from bridge.models import ACTIVE, InstanceState
from bridge.runtime.base import Discovered

log = logging.getLogger(__name__)
KINDS = ("adopted", "restarted", "orphans_removed", "left", "errors")


async def reconcile(instances: InstanceManager) -> dict[str, list[str]]:
    runtime = instances.runtime
    report: dict[str, list[str]] = {kind: [] for kind in KINDS}
    try:
        found = {(d.client_id, d.service): d for d in await runtime.discover()}
    except Exception as exc:  # no discovery: judge each instance by its stored backend state alone
        log.exception("reconcile: %s could not list its instances", runtime.name)
        report["errors"].append(f"discover: {exc.__class__.__name__}: {exc}")
        found = {}
    routes = list(instances.table)
    outcomes = await asyncio.gather(
        *(_one(instances, route, found.pop(route.key, None)) for route in routes), return_exceptions=True
    )
    for route, outcome in zip(routes, outcomes, strict=True):
        name = f"{route.client_id}/{route.service}"
        if isinstance(outcome, BaseException):
            log.error("reconcile: %s failed: %r", name, outcome)
            report["errors"].append(f"{name}: {outcome.__class__.__name__}: {outcome}")
        else:
            kind, detail = outcome
            report[kind].append(f"{name}{detail}")
    await asyncio.gather(*(_remove_orphan(instances, orphan, report) for orphan in found.values()))
    summary = ", ".join(f"{kind} {len(names)}: {', '.join(names) or '-'}" for kind, names in report.items())
    level = "warning" if report["errors"] else "info"
    instances.table.events.record("bridge.reconcile", f"start-up reconcile on {runtime.name}: {summary}", level=level)
    return report


async def _one(instances: InstanceManager, route: Route, discovered: Discovered | None) -> tuple[str, str]:
    runtime = instances.runtime
    state: dict[str, Any] = discovered.state if discovered and discovered.port == route.port else route.backend_state
    alive = bool(state) and (await runtime.poll(state)).running
    if route.state not in ACTIVE:
        if alive and route.state == InstanceState.IDLE:
            await runtime.stop(state)  # idle means stopped: honour the intent
        return "left", f" ({route.state})"
    if alive:
        route.backend_state = state
        try:
            await probe(instances.http, route.port, route.path, route.transport, timeout=5, key=route.instance_key)
        except ProbeFailed:
            pass  # running but not answering: start it afresh below
        else:
            instances.table.transition(route, InstanceState.RUNNING, backend_state=state)
            return "adopted", ""
    await instances.stop_quietly(route)
    instances.start(route, restarting=True)
    return "restarted", ""


async def _remove_orphan(instances: InstanceManager, orphan: Discovered, report: dict[str, list[str]]) -> None:
    name = f"{orphan.client_id}/{orphan.service}"
    try:
        await instances.runtime.remove(orphan.client_id, orphan.service, orphan.state)
    except Exception as exc:
        log.error("reconcile: removing orphan %s failed: %r", name, exc)
        report["errors"].append(f"orphan {name}: {exc.__class__.__name__}: {exc}")
        return
    report["orphans_removed"].append(name)
