"""The class keywords of bridge.errors: a subclass sets its status and code, or inherits the one it leaves out."""

from __future__ import annotations

from bridge import errors


def test_keywords_set_status_and_code_and_what_is_left_out_is_inherited() -> None:
    assert (errors.BridgeError.status, errors.BridgeError.code) == (500, "internal_error")
    assert (errors.NotFound.status, errors.NotFound.code) == (404, "not_found")
    assert (errors.TooManyInstances.status, errors.TooManyInstances.code) == (429, "capacity_exceeded")
    assert (errors.PortPoolExhausted.status, errors.PortPoolExhausted.code) == (503, "port_pool_exhausted")
    assert issubclass(errors.PortPoolExhausted, errors.Unavailable)


def test_codes_are_unique_so_a_client_can_tell_errors_apart() -> None:
    family = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.BridgeError)]
    assert len(family) == 17
    assert len({cls.code for cls in family}) == len(family)


def test_an_error_keeps_message_details_and_headers() -> None:
    err = errors.Invalid("bad id", client="Alice")
    assert (str(err), err.message, err.details, err.headers) == ("bad id", "bad id", {"client": "Alice"}, {})
    assert errors.PortPoolExhausted("full", retry_after=7).headers == {"Retry-After": "7"}
    assert errors.Unavailable("busy").headers == {"Retry-After": "5"}
