"""Leadership among bridges sharing one database: one runs the health monitor and reconciliation.

A lease row with an expiry (``store.acquire_lease``): the holder renews it every probe interval; when the
holder dies its lease runs out and another bridge takes it over. The holder's name is kept in its data dir,
so a bridge restarted after a crash is the same holder and takes its lease straight back; a single bridge
therefore always leads.
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from bridge import store
from bridge.errors import InsufficientStorage

log = logging.getLogger(__name__)
MONITOR = "health-monitor"


@dataclass
class Leadership:
    """The monitor lease of one bridge (``holder``) in a shared database; ``leading`` after each ``renew``."""

    engine: Engine
    ttl: float  # seconds the lease lasts unless renewed
    holder: str
    name: str = MONITOR
    deferred: bool = False  # a bridge taking over (serve --upgrade) follows until the old one has exited
    leading: bool = field(default=False, init=False)
    _ever_led: bool = field(default=False, init=False)

    def renew(self) -> bool:
        """Take or keep the lease; True while this bridge leads. A lost database never raises here."""
        if self.deferred:
            return False
        try:
            with store.session(self.engine) as db:
                leading = store.acquire_lease(db, name=self.name, holder=self.holder, ttl=self.ttl)
        except InsufficientStorage as exc:  # a full database: no other bridge can take the lease either
            if self.leading:
                log.debug("lease %s kept without renewal: %s", self.name, exc.message)
            else:
                log.warning("lease %s could not be taken: %s", self.name, exc.message)
            leading = self.leading
        except Exception as exc:  # the database is away: stop leading rather than act on stale beliefs
            log.warning("lease %s could not be renewed: %s", self.name, exc)
            leading = False
        if leading != self.leading:
            # Taking the lease at start-up is routine; losing it, or taking it later (a takeover), is news.
            level = logging.INFO if leading and not self._ever_led else logging.WARNING
            log.log(level, "%s %s lease %s", self.holder, "took" if leading else "lost", self.name)
        self._ever_led = self._ever_led or leading
        self.leading = leading
        return leading

    def release(self) -> None:
        if self.leading:
            with store.session(self.engine) as db:
                store.release_lease(db, name=self.name, holder=self.holder)
            self.leading = False


def bridge_identity(data_dir: Path) -> str:
    """``host:id`` with the id kept in DATA_DIR/bridge-id, stable across restarts of this bridge."""
    path = data_dir / "bridge-id"
    try:
        ident = path.read_text().strip()
    except OSError:
        ident = ""
    if not ident:
        ident = uuid.uuid4().hex[:12]
        path.write_text(ident + "\n")
    return f"{socket.gethostname()}:{ident}"
