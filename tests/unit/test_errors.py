"""Every domain error keeps its HTTP status, stable code and family: clients and the OpenAPI document rely on them."""

from __future__ import annotations

import pytest

from bridge import errors

EXPECTED = [
    ("BridgeError", 500, "internal_error", Exception),
    ("BadRequest", 400, "bad_request", errors.BridgeError),
    ("Unauthorized", 401, "unauthorized", errors.BridgeError),
    ("Forbidden", 403, "forbidden", errors.BridgeError),
    ("NotFound", 404, "not_found", errors.BridgeError),
    ("Conflict", 409, "conflict", errors.BridgeError),
    ("PayloadTooLarge", 413, "payload_too_large", errors.BridgeError),
    ("MisdirectedRequest", 421, "misdirected_request", errors.BridgeError),
    ("Invalid", 422, "invalid", errors.BridgeError),
    ("UpstreamError", 502, "upstream_error", errors.BridgeError),
    ("Unavailable", 503, "unavailable", errors.BridgeError),
    ("TooManyInstances", 429, "capacity_exceeded", errors.Unavailable),
    ("PortPoolExhausted", 503, "port_pool_exhausted", errors.Unavailable),
    ("TooManyStreams", 429, "too_many_streams", errors.Unavailable),
]


@pytest.mark.parametrize(("name", "status", "code", "base"), EXPECTED, ids=[row[0] for row in EXPECTED])
def test_status_code_and_family(name: str, status: int, code: str, base: type) -> None:
    cls = getattr(errors, name)
    assert (cls.status, cls.code) == (status, code)
    assert cls.__bases__ == (base,)
    err = cls("it went wrong", client="alice")
    assert (err.message, err.details, str(err)) == ("it went wrong", {"client": "alice"}, "it went wrong")


def test_unavailable_family_says_when_to_retry() -> None:
    assert errors.PortPoolExhausted("full", retry_after=7).headers == {"Retry-After": "7"}
    assert errors.Unavailable("busy").headers == {"Retry-After": "5"}
    assert errors.NotFound("gone", headers={"X-A": "1"}).headers == {"X-A": "1"}
