"""Domain errors. Each carries its HTTP status and a stable code; one middleware renders them as JSON."""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """The base of every error the bridge answers with: a subclass names its status and code in its header."""

    status = 500
    code = "internal_error"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs: Any) -> None:
        # class keywords keep each error to one line; one left out is inherited (PortPoolExhausted stays 503)
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details


class BadRequest(BridgeError, status=400, code="bad_request"): ...


class NestedTooDeep(BadRequest, code="json_too_deep"):
    """A JSON body nests deeper than ``bridge.jsonlimits.MAX_JSON_DEPTH``; refused before parsing (no recursion)."""


class Unauthorized(BridgeError, status=401, code="unauthorized"): ...


class Forbidden(BridgeError, status=403, code="forbidden"): ...


class NotFound(BridgeError, status=404, code="not_found"): ...


class Conflict(BridgeError, status=409, code="conflict"): ...


class PayloadTooLarge(BridgeError, status=413, code="payload_too_large"): ...


class Invalid(BridgeError, status=422, code="invalid"): ...


class UpstreamError(BridgeError, status=502, code="upstream_error"): ...


class MisdirectedRequest(BridgeError, status=421, code="misdirected_request"):
    """The request names a Host this bridge does not answer for (a DNS-rebinding page, a wrong proxy)."""


class Unavailable(BridgeError, status=503, code="unavailable"):
    """The thing exists but cannot serve now; ``retry_after`` seconds is a fair guess for when it can."""

    def __init__(self, message: str, *, retry_after: int = 5, **details: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **details)


class TooManyInstances(Unavailable, status=429, code="capacity_exceeded"):
    """Starting this would exceed PARADISE_MAX_INSTANCES or PARADISE_MAX_MEMORY."""


class PortPoolExhausted(Unavailable, code="port_pool_exhausted"):
    """Every port of PARADISE_PORT_RANGE is leased."""


class TooManyStreams(Unavailable, status=429, code="too_many_streams"):
    """A client holds as many open event streams as it may; one must close before another opens."""


class InsufficientStorage(BridgeError, status=507, code="insufficient_storage"):
    """The data dir's disk (or its inodes) is full: the change was not made, nothing half-written was kept."""


class DatabaseBusy(Unavailable, code="database_busy"):
    """The database is locked by another writer for longer than the wait allows; the same call can be retried."""
