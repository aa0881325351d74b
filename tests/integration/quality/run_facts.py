"""What a run_tests reply says about a failure, in the form the quality tests compare it."""

from __future__ import annotations

from typing import Any


def the_failure(reply: dict[str, Any]) -> tuple[Any, ...]:
    """(runner, test id, file, line, message) of the reply's only failure: what an agent reads to fix it."""
    [failure] = reply["failures"]
    return failure["runner"], failure["test"], failure["file"], failure["line"], failure["message"]
