"""A running bridge follows its catalog: ``catalog add``, ``catalog rm`` or an edited PARADISE_CATALOG take
effect without a restart.

Every ``POLL`` seconds the watcher looks at the catalog files (``DATA_DIR/catalog.toml``, PARADISE_CATALOG);
when one changed it loads the catalog again and updates the bridge's one catalog dict in place, so every
holder sees the same entries:

* an added service is offered to the next registration;
* a changed one keeps its running instances; each starts as changed at its next start (``client restart``);
* a removed one is retired: every client's instance of it is stopped and removed, its port released and its
  row deleted, and a request for it answers 404 with a JSON error saying the service left the catalog.
  The client keeps its other services. Adding the service again offers it to new registrations.

A catalog that became invalid leaves the one in use alone (a warning event says why). Routes whose service
the catalog does not know (the bridge restarted after a ``catalog rm``) are retired the same way, on the first
look after start-up. Only the bridge that leads (holds the monitor lease) retires: with bridges sharing one
database, a follower's table follows the database. Registration also reads the files (bridge/clients.py), so
a client added right after ``catalog add`` does not wait for the next poll.

A module beside clients.py, not inside bridge/catalog: it drives the ClientManager and its routes, and the
catalog package is below both (lifecycle and clients import it), so it must import neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from bridge import store
from bridge.catalog.services import DATA_CATALOG, CatalogError, ServiceSpec, load_catalog
from bridge.eventloop import background
from bridge.settings import BridgeSettings

if TYPE_CHECKING:
    from bridge.clients import ClientManager
    from bridge.lifecycle.routes import Route

log = logging.getLogger(__name__)
POLL = 1.0  # seconds between looks at the catalog files (a stat each: nothing is read unless one changed)
Stamp = tuple[tuple[int, int, int] | None, ...]


class CatalogWatcher:
    """Reloads the catalog when its files change and retires the instances of services it lost."""

    def __init__(self, catalog: dict[str, ServiceSpec], settings: BridgeSettings, manager: ClientManager) -> None:
        self.catalog = catalog
        self.settings = settings
        self.manager = manager
        self.files = [settings.data_dir / DATA_CATALOG, *([settings.catalog] if settings.catalog else [])]
        self._seen: Stamp | None = None

    def _stamp(self) -> Stamp:
        """(mtime, size, inode) of each file, None for a missing one: `catalog add` replaces the file whole."""
        stamps = []
        for path in self.files:
            try:
                info = path.stat()
            except OSError:
                stamps.append(None)
            else:
                stamps.append((info.st_mtime_ns, info.st_size, info.st_ino))
        return tuple(stamps)

    async def run(self) -> None:
        """Look until cancelled; one failing look is logged, never the end of watching."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catalog watch: this look failed; looking again in %.0fs", POLL)
            await asyncio.sleep(POLL)

    async def check(self) -> None:
        stamp = await asyncio.to_thread(self._stamp)
        if stamp != self._seen:
            self._seen = stamp
            await self.reload()
        monitor = self.manager.monitor
        if monitor is not None and not monitor.leadership.leading:
            return  # a follower: the leading bridge retires; this one's table follows the database
        for route in self.manager.routes():
            if route.service not in self.catalog:
                await self.retire(route)

    async def reload(self) -> None:
        try:
            fresh = await asyncio.to_thread(load_catalog, self.settings.catalog, self.settings.data_dir)
        except CatalogError as exc:
            self.manager.events.record("catalog.invalid", f"catalog not reloaded, the one in use stays: {exc}",
                                       level="warning")
            return
        added = sorted(fresh.keys() - self.catalog.keys())
        removed = sorted(self.catalog.keys() - fresh.keys())
        changed = sorted(n for n in fresh.keys() & self.catalog.keys() if fresh[n] != self.catalog[n])
        table = self.manager.instances.table
        when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        for name in removed:
            self.catalog.pop(name, None)
            table.retired[name] = (f"the service was removed from the bridge's catalog at {when} (devops-paradise "
                                   "catalog rm); add it again with devops-paradise catalog add, then register anew")
        for name in added:
            table.retired.pop(name, None)
        self.catalog.update(fresh)
        if added or removed or changed:
            parts = [f"{kind} {', '.join(names)}" for kind, names in
                     (("added", added), ("changed", changed), ("removed", removed)) if names]
            self.manager.events.record("catalog.reloaded", "catalog reloaded: " + "; ".join(parts))

    async def retire(self, route: Route) -> None:
        """Take one instance of a service the catalog lost out of the table, stop and remove it, release its
        port and delete its row."""
        instances = self.manager.instances
        if not instances.table.drop_route(route):
            return
        instances.table.record(route, "instance.retired", f"stopped and removed: {route.service} is no longer in "
                               "the catalog", level="warning")
        try:
            await instances.remove(route)
        except Exception as exc:  # the runtime's trouble: the route is gone either way, discover() finds an orphan
            log.warning("catalog watch: removing %s/%s failed: %s", route.client_id, route.service, exc)
        await instances.table.writer.flush()  # no queued write of the row may land after its delete
        await asyncio.to_thread(self._forget, route)

    def _forget(self, route: Route) -> None:
        self.manager.instances.ports.release(client_id=route.client_id, service=route.service)
        with store.session(self.manager.engine) as db:
            row = store.get_instance(db, client_id=route.client_id, service=route.service)
            if row is not None:
                db.delete(row)


@contextlib.asynccontextmanager
async def watching(catalog: dict[str, ServiceSpec], settings: BridgeSettings, manager: ClientManager,
                   ) -> AsyncIterator[CatalogWatcher]:
    """The watcher running for the app's lifetime (app.py's cleanup context)."""
    watcher = CatalogWatcher(catalog, settings, manager)
    async with background(watcher.run(), "catalog watch"):
        yield watcher


__all__ = ["POLL", "CatalogWatcher", "watching"]
