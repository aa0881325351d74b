"""Sessions that outlive instances: the client's MCP session id is the bridge's, mapped to the instance's.

For clients of the session era (2025-03-26 … 2025-11-25) the bridge answers ``initialize`` with a session id
of its own and keeps the client's initialize request. When the instance behind a session is a new one
(restart, crash, wake) — or answers 404 for the mapped session — the bridge replays that initialize plus
``notifications/initialized`` against it, maps the new upstream session, and sends the request on: the
client never sees its session break. Sessionless (2026-07-28) traffic carries no session id and passes by.

The map lives in memory (the hot path reads no database) and is written behind, in order, to the store, so
a bridge restart keeps every mapping.
"""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy.engine import Engine

from bridge import store
from bridge.lifecycle.routes import Route, StateWriter
from bridge.mcp.client import McpStatusError, ProbeFailed, instance_url, post_message
from bridge.mcp.protocol import INITIALIZED_NOTIFICATION, PROTOCOL_VERSION_HEADER, SESSION_ID_HEADER
from bridge.models import McpSessionRow

MAX_SESSIONS_PER_INSTANCE = 256  # a client opening sessions in a loop drops its oldest, not our memory


@dataclass
class Mapped:
    id: str
    client_id: str
    service: str
    upstream_id: str
    init: dict[str, Any]
    incarnation: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def row(self) -> McpSessionRow:
        return McpSessionRow(
            id=self.id, client_id=self.client_id, service=self.service, upstream_id=self.upstream_id,
            init=self.init, incarnation=self.incarnation,
        )


def initialize_message(body: bytes | None) -> dict[str, Any] | None:
    """The JSON-RPC initialize request in ``body``, or None (cheap for everything else)."""
    if not body or b'"initialize"' not in body:
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message if isinstance(message, dict) and message.get("method") == "initialize" else None


class SessionMap:
    def __init__(self, engine: Engine, writer: StateWriter) -> None:
        self.engine = engine
        self.writer = writer
        self._sessions: dict[str, Mapped] = {}
        self._order: dict[tuple[str, str], collections.OrderedDict[str, None]] = collections.defaultdict(
            collections.OrderedDict
        )

    async def load(self) -> None:
        def read() -> list[McpSessionRow]:
            with store.session(self.engine) as db:
                return store.list_mcp_sessions(db)

        for row in await asyncio.to_thread(read):
            self._keep(Mapped(row.id, row.client_id, row.service, row.upstream_id, row.init, row.incarnation))

    def get(self, session_id: str, route: Route) -> Mapped | None:
        """The mapping of a session id the bridge issued for this very instance; None for any other id."""
        mapped = self._sessions.get(session_id)
        if mapped is None or (mapped.client_id, mapped.service) != route.key:
            return None
        return mapped

    def issue(self, route: Route, upstream_id: str, init: dict[str, Any]) -> Mapped:
        mapped = Mapped(secrets.token_urlsafe(24), route.client_id, route.service, upstream_id, init, route.incarnation)
        self._keep(mapped)
        row = mapped.row()
        self.writer.submit("an MCP session", lambda db: store.put_mcp_session(db, row))
        return mapped

    def answer_id(
        self, route: Route, upstream_id: str | None, status: int, mapped: Mapped | None, init: dict | None, method: str
    ) -> str | None:
        """The session id the client sees in an answer: the bridge's own for a mapped or a new session."""
        if init is not None and status == 200 and upstream_id:
            return self.issue(route, upstream_id, init).id
        if mapped is not None:
            if method == "DELETE" and status < 300:
                self.drop(mapped)
            return mapped.id if upstream_id else None
        return upstream_id

    def rebind(self, mapped: Mapped, upstream_id: str, incarnation: str) -> None:
        mapped.upstream_id, mapped.incarnation = upstream_id, incarnation
        row = mapped.row()
        self.writer.submit("an MCP session", lambda db: store.put_mcp_session(db, row))

    def drop(self, mapped: Mapped) -> None:
        self._sessions.pop(mapped.id, None)
        self._order[(mapped.client_id, mapped.service)].pop(mapped.id, None)
        self.writer.submit("an MCP session", lambda db: store.delete_mcp_sessions(db, ids=[mapped.id]))

    def drop_client(self, client_id: str) -> list[Mapped]:
        """Forget every session of the client; the ones forgotten."""
        dropped = [m for m in self._sessions.values() if m.client_id == client_id]
        for mapped in dropped:
            self._sessions.pop(mapped.id, None)
        for key in [k for k in self._order if k[0] == client_id]:
            self._order.pop(key)
        self.writer.submit("MCP sessions", lambda db: store.delete_mcp_sessions(db, client_id=client_id))
        return dropped

    def _keep(self, mapped: Mapped) -> None:
        self._sessions[mapped.id] = mapped
        order = self._order[(mapped.client_id, mapped.service)]
        order[mapped.id] = None
        while len(order) > MAX_SESSIONS_PER_INSTANCE:
            oldest, _ = order.popitem(last=False)
            gone = self._sessions.pop(oldest, None)
            if gone is not None:
                self.writer.submit("an MCP session", lambda db, i=oldest: store.delete_mcp_sessions(db, ids=[i]))

    # ---- replay ------------------------------------------------------------------------------------

    async def ensure_current(
        self,
        mapped: Mapped,
        route: Route,
        http: aiohttp.ClientSession,
        headers: dict[str, str],
        *,
        refused: str | None = None,
    ) -> None:
        """Make sure the instance behind ``mapped`` knows its session, replaying the client's initialize if not.

        ``refused``: the upstream session id the instance just answered 404 for (replay even when the launch
        is the same one, unless another request already replayed it meanwhile).
        """
        async with mapped.lock:  # one replay per session, however many requests arrive at once
            if refused is None and mapped.incarnation == route.incarnation:
                return
            if refused is not None and mapped.upstream_id != refused:
                return
            await self._replay(mapped, route, http, headers)

    async def _replay(self, mapped: Mapped, route: Route, http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
        url = instance_url(route.port, route.path)
        init = {**mapped.init, "id": f"paradise-replay-{secrets.token_hex(4)}"}
        answer = await post_message(http, url, headers, init)
        if answer.session_id is None:
            raise ProbeFailed("the new instance answered initialize without a session id")
        result = (answer.message or {}).get("result") or {}
        after = {**headers, SESSION_ID_HEADER: answer.session_id}
        if isinstance(result.get("protocolVersion"), str):
            after[PROTOCOL_VERSION_HEADER] = result["protocolVersion"]
        try:
            await post_message(http, url, after, dict(INITIALIZED_NOTIFICATION))
        except McpStatusError as exc:
            raise ProbeFailed(f"notifications/initialized was refused: {exc}") from None
        self.rebind(mapped, answer.session_id, route.incarnation)
