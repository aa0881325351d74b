"""What tenant code tries against the things it must not reach; shared by the process and Docker attack scripts.

A probe never raises: it returns what it got ("READ:<first bytes>", a directory's names) or the name of the
error that stopped it, so the attacker's report says exactly how far it came. The attack scripts carry this
file's source into the tenant (a container has no checkout), so it needs nothing but the standard library.
"""

from __future__ import annotations

import os


def read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return "READ:" + handle.read(64).decode("utf-8", "replace")
    except OSError as exc:
        return type(exc).__name__


def listing(path: str) -> list[str] | str:
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        return type(exc).__name__
