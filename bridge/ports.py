"""PortAllocator: host ports for instances, leased from a pool and persisted.

A lease is a row whose primary key is the port, written in its own transaction, so no two instances can
ever share a port, whichever bridge (or concurrent request) asks. Leases outlive bridge restarts and are
only given back when their client is deleted.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from bridge import store
from bridge.errors import PortPoolExhausted
from bridge.runtime.base import port_is_free

log = logging.getLogger(__name__)
__all__ = ["PortAllocator", "port_is_free"]


class PortAllocator:
    def __init__(self, engine: Engine, pool: range, *, host: str = "127.0.0.1") -> None:
        self.engine = engine
        self.pool = pool
        self.host = host

    @property
    def range_text(self) -> str:
        return f"{self.pool.start}-{self.pool.stop - 1}"

    def lease(self, *, client_id: str, service: str) -> int:
        """Lease the lowest free port of the pool to (client, service)."""
        with store.session(self.engine) as db:
            taken = store.leased_ports(db)
        for port in self.pool:
            if port in taken:
                continue
            if not port_is_free(port, self.host):
                self._record_foreign(port)
                continue
            try:
                with store.session(self.engine) as db:
                    store.add_lease(db, port=port, client_id=client_id, service=service)
            except store.IntegrityError:
                continue  # another request leased it between our read and our write
            return port
        raise PortPoolExhausted(
            f"no free port left in PARADISE_PORT_RANGE {self.range_text}",
            retry_after=30,
            port_range=self.range_text,
        )

    def release(self, *, client_id: str, service: str | None = None, port: int | None = None) -> list[int]:
        with store.session(self.engine) as db:
            return store.release_leases(db, client_id=client_id, service=service, port=port)

    def move(self, *, client_id: str, service: str, old: int) -> int:
        """Lease another port for (client, service), then let ``old`` go (so it cannot come back)."""
        new = self.lease(client_id=client_id, service=service)
        self.release(client_id=client_id, service=service, port=old)
        return new

    def usage(self) -> tuple[int, int]:
        """(leased, pool size)."""
        with store.session(self.engine) as db:
            return len(store.leased_ports(db) & set(self.pool)), len(self.pool)

    def _record_foreign(self, port: int) -> None:
        log.warning("port %d of the pool is taken by another program; skipped", port)
        with store.session(self.engine) as db:
            store.add_event(
                db,
                kind="port.conflict",
                level="warning",
                message=f"port {port} is in use by another program; skipped",
            )
