"""The JS checks' pure parts: the first line prettier would change."""

from __future__ import annotations

from pathlib import Path

from instances.quality.checks.js_lint import first_difference

DATA = Path(__file__).parents[1] / "data"


def test_first_line_prettier_would_change() -> None:
    assert first_difference("a\nb\nc\n", "a\nB\nc\n") == 2
    assert first_difference("a\n", "a\nb\n") == 2
    assert first_difference("same\n", "same\n") == 1
