"""Domain errors. Each carries its HTTP status and a stable code; one middleware renders them as JSON."""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details


class BadRequest(BridgeError):
    status, code = 400, "bad_request"


class Unauthorized(BridgeError):
    status, code = 401, "unauthorized"


class Forbidden(BridgeError):
    status, code = 403, "forbidden"


class NotFound(BridgeError):
    status, code = 404, "not_found"


class Conflict(BridgeError):
    status, code = 409, "conflict"


class MisdirectedRequest(BridgeError):
    """The request names a Host this bridge does not answer for (a DNS-rebinding page, a wrong proxy)."""

    status, code = 421, "misdirected_request"


class PayloadTooLarge(BridgeError):
    status, code = 413, "payload_too_large"


class Invalid(BridgeError):
    status, code = 422, "invalid"


class Unavailable(BridgeError):
    """The thing exists but cannot serve now; ``retry_after`` seconds is a fair guess for when it can."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **details: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **details)


class TooManyInstances(Unavailable):
    """Starting this would exceed PARADISE_MAX_INSTANCES or PARADISE_MAX_MEMORY."""

    status, code = 429, "capacity_exceeded"


class PortPoolExhausted(Unavailable):
    code = "port_pool_exhausted"


class UpstreamError(BridgeError):
    status, code = 502, "upstream_error"


class TooManyStreams(Unavailable):
    """A client holds as many open event streams as it may; one must close before another opens."""

    status, code = 429, "too_many_streams"
