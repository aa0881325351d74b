"""Start-up reconciliation (as JupyterHub's init_spawners): stored intent against what the runtime runs.

For every instance the database knows: adopt it if the runtime still runs it on its port and it answers
MCP (sessions opened before a bridge crash keep working), else start it again on its port. Instances the
runtime labels as ours but the database does not know are orphans and are removed. Idle and failed
instances are left as they are. One event, logged loudly, says what was done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.mcp.client import ProbeFailed, probe
from bridge.models import InstanceState as S

if TYPE_CHECKING:
    from bridge.lifecycle.instances import InstanceManager

RUNNABLE = (S.STARTING, S.RUNNING, S.UNHEALTHY, S.RESTARTING)


async def reconcile(instances: InstanceManager) -> dict[str, list[str]]:
    runtime = instances.runtime
    found = {(d.client_id, d.service): d for d in await runtime.discover()}
    report: dict[str, list[str]] = {"adopted": [], "restarted": [], "orphans_removed": [], "left": []}
    for route in list(instances.routes.values()):
        discovered = found.pop(route.key, None)
        name = f"{route.client_id}/{route.service}"
        state = discovered.state if discovered and discovered.port == route.port else route.backend_state
        alive = bool(state) and (await runtime.poll(state)).running
        if route.state not in RUNNABLE:
            if alive and route.state == S.IDLE:
                await runtime.stop(state)  # idle means stopped: honour the intent
            report["left"].append(f"{name} ({route.state})")
            continue
        if alive:
            route.backend_state = state
            try:
                await probe(instances.http, route.port, route.path, route.transport, timeout=5)
            except ProbeFailed:
                pass  # running but not answering: start it afresh below
            else:
                instances.set_state(route, S.RUNNING, backend_state=state)
                report["adopted"].append(name)
                continue
        await instances.stop_quietly(route)
        instances.start(route, restarting=True)
        report["restarted"].append(name)
    for orphan in found.values():
        await runtime.remove(orphan.client_id, orphan.service, orphan.state)
        report["orphans_removed"].append(f"{orphan.client_id}/{orphan.service}")
    summary = ", ".join(f"{kind} {len(names)}: {', '.join(names) or '-'}" for kind, names in report.items())
    instances.events.record("bridge.reconcile", f"start-up reconcile on {runtime.name}: {summary}")
    return report
