"""The bridge's aiohttp connector: ``127.0.0.1:<port>`` of a sandboxed instance goes to its Unix socket.

Probes, readiness checks, session replay and the dashboard's quality reads all call instances by their
leased port (``instance_url``). A process-runtime instance has no port on the host (its sandbox has a
network of its own); its runtime registered the socket that reaches it (bridge/runtime/address.py). This
connector looks the port up per connection: a registered socket is dialled as a Unix socket, anything else
as TCP, so no caller has to know which runtime it talks to.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.client_exceptions import UnixClientConnectorError

from bridge.runtime import address


class InstanceConnector(aiohttp.TCPConnector):
    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        path = address.unix_socket(req.url.port) if req.url.host == "127.0.0.1" else None
        if path is None:
            return await super()._create_connection(req, traces, timeout)
        try:
            async with asyncio.timeout(timeout.sock_connect):
                sock = await address.dial(path)
            _, proto = await self._loop.create_unix_connection(self._factory, sock=sock)
        except OSError as exc:
            raise UnixClientConnectorError(path, req.connection_key, exc) from exc
        return proto
