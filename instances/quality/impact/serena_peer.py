"""The client's own Serena, called from the quality instance: an MCP client over Streamable HTTP.

The bridge tells this instance where Serena listens and with which instance key it answers (request headers
captured by instances/keyguard.py's ``PEERS``); nothing else is configured here. Serena is reached the way
the bridge reaches it: its URL (on the process runtime ``http://127.0.0.1:<port>/mcp``, so the Host header the
SDK checks is ``127.0.0.1:<port>``; in a container its name on the client's network, where Serena listens on
0.0.0.0 and checks no Host) and ``X-Paradise-Instance-Key``. Every call is bounded, and every failure becomes
``PeerUnavailable`` with a reason a person can read; the key is never put into a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from instances.keyguard import INSTANCE_KEY_HEADER, PEERS

CONNECT_TIMEOUT = 10.0
CALL_TIMEOUT = 30.0  # one symbol or reference query; the language server is up once the bridge says ready


class PeerUnavailable(Exception):
    """Serena could not be asked or did not answer usefully; the message says why."""


def current_serena() -> tuple[str, str] | None:
    """(url, key) of the client's Serena while the bridge says it runs, else None."""
    return PEERS.get("serena")


class SerenaPeer:
    """``async with SerenaPeer(url, key) as serena: await serena.call_json("find_symbol", {...})``."""

    def __init__(self, url: str, key: str, *, call_timeout: float = CALL_TIMEOUT) -> None:
        self.url = url
        self._key = key
        self.call_timeout = call_timeout
        self.calls = 0
        self._stack = contextlib.AsyncExitStack()
        self._client: Client | None = None

    async def __aenter__(self) -> SerenaPeer:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                http = await self._stack.enter_async_context(
                    httpx2.AsyncClient(
                        headers={INSTANCE_KEY_HEADER: self._key},
                        timeout=httpx2.Timeout(CONNECT_TIMEOUT, read=self.call_timeout + 5),
                    )
                )
                # "legacy": the initialize handshake every Serena release speaks, one round trip.
                self._client = await self._stack.enter_async_context(
                    Client(streamable_http_client(self.url, http_client=http), mode="legacy")
                )
        except BaseException as exc:
            await self._close_quietly()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise PeerUnavailable(f"cannot reach Serena at {self.url}: {describe(exc)}") from None
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close_quietly()

    async def _close_quietly(self) -> None:
        with contextlib.suppress(Exception, BaseExceptionGroup):
            async with asyncio.timeout(5):
                await self._stack.aclose()

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """The text Serena answers; PeerUnavailable when it errs, times out or the connection fails."""
        if self._client is None:
            raise PeerUnavailable("not connected to Serena")
        self.calls += 1
        try:
            result = await asyncio.wait_for(self._client.call_tool(tool, arguments), self.call_timeout)
        except TimeoutError:
            raise PeerUnavailable(f"Serena's {tool} did not answer within {self.call_timeout:.0f}s") from None
        except Exception as exc:
            raise PeerUnavailable(f"Serena's {tool} failed: {describe(exc)}") from None
        text = "".join(getattr(part, "text", "") for part in result.content)
        if result.is_error:
            raise PeerUnavailable(f"Serena's {tool} answered an error: {text[:200]}")
        return text

    async def call_json(self, tool: str, arguments: dict[str, Any]) -> Any:
        """The answer as JSON; a plain-text answer (Serena's "too long", "no such file") is a failure."""
        text = await self.call(tool, arguments)
        try:
            return json.loads(text)
        except ValueError:
            raise PeerUnavailable(f"Serena's {tool} gave no data: {text[:200]}") from None


def describe(exc: BaseException) -> str:
    """The innermost cause of an SDK error (its task groups wrap failures in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:300]
