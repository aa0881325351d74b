"""The one error type of the quality instance: bad input that a tool reports as a structured error."""

from __future__ import annotations

from typing import Any


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


NODE_FIX = "install the bundled Node toolchain (sh instances/quality/node/install.sh), or the tool in the workspace"


def not_installed(linter: str, fix: str, what: str | None = None) -> dict[str, Any]:
    """A check the workspace needs whose tool is missing: an error with the fix, never "skipped"."""
    message = f"{what or linter} is not installed"
    return {"linter": linter, "status": "error", "error": {"code": "tool_missing", "message": message, "fix": fix}}
