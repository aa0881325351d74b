"""The last step of every generator of docs/: write the page, or with ``--check`` only say whether it drifted."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(argv: list[str], target: Path, text: str, generator: str, wrote: str = "") -> int:
    """0 when written (or, with --check, up to date); 1 when --check finds the page out of date."""
    page = target.relative_to(ROOT)
    if "--check" in argv:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{page} is out of date: run python -m scripts.{generator}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {page}{wrote}")
    return 0
