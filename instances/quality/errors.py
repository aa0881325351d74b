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
