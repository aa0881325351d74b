"""The one error type of the quality instance: bad input that a tool reports as a structured error."""

from __future__ import annotations


class QualityError(Exception):
    """A problem the caller can fix (bad argument, missing repository, bad profiles file)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


MAX_TIMEOUT_S = 86400


def checked_timeout(value: float | None) -> float | None:
    """A tool's `timeout_seconds` as given (None: the profile's), or bad_argument outside (0, 1 day]."""
    if value is not None and not 0 < value <= MAX_TIMEOUT_S:
        raise QualityError("bad_argument", f"timeout_seconds must be between 0 and {MAX_TIMEOUT_S}")
    return value
