"""How deep a JSON text nests, measured before it is parsed: ``json.loads`` recurses once per level, so a body of
``[`` x 100,000 raises RecursionError (a 500) instead of a clean 400. Every route that parses a request body
checks it here first.

For other modules (the admin API, the MCP route, the dashboard):

- ``MAX_JSON_DEPTH`` (64): deeper than any real MCP message or admin request, far below the recursion limit.
- ``json_depth(raw)`` → the deepest nesting of arrays/objects in ``raw`` (bytes or str), strings skipped. Pure.
- ``too_deep(raw, limit=MAX_JSON_DEPTH)`` → True when ``raw`` nests deeper than ``limit``. Pure.
- ``loads_bounded(raw, limit=MAX_JSON_DEPTH)`` → ``json.loads(raw)``, raising ``JsonTooDeep`` (a ``ValueError``,
  so an existing ``except ValueError`` for bad JSON already catches it) when it nests deeper than ``limit``.
- ``JsonTooDeep.message`` is the sentence to put in the 400 answer (or a JSON-RPC -32600/-32700 error).
- ``control_character_at(data)`` → where in parsed ``data`` a string (key or value) holds a control character
  (``\n``, ``\r``, ``\x00``-``\x1f``, ``\x7f``), e.g. ``"workspace"``, or None. Such a string, once logged or
  stored, forges log lines and breaks records; the admin API refuses it (422).

Cost: one C-speed pass to drop string literals, one to keep only brackets, one ``accumulate`` over those; a body
with fewer opening brackets than ``limit`` is answered from two ``bytes.count`` calls.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 64

# A JSON string literal (escapes included), unrolled so the regex engine never backtracks across it.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonTooDeep(ValueError):
    """A JSON text nests deeper than allowed; ``message`` says how deep and what the limit is."""

    def __init__(self, depth: int, limit: int) -> None:
        self.depth, self.limit = depth, limit
        self.message = f"JSON nested {depth} levels deep; at most {limit} are accepted"
        super().__init__(self.message)


def _as_bytes(raw: bytes | bytearray | memoryview | str) -> bytes:
    return raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)


def json_depth(raw: bytes | bytearray | memoryview | str) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (0 for a scalar); brackets inside strings do not count.

    Not a validator: for invalid JSON the answer is the nesting its brackets would have (an unterminated string
    counts the brackets after its quote), which is what matters to a parser about to recurse into it."""
    data = _as_bytes(raw)
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(_STEP[b] for b in brackets)))


def too_deep(raw: bytes | bytearray | memoryview | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``raw`` nests arrays/objects deeper than ``limit`` levels."""
    data = _as_bytes(raw)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # cannot nest deeper than it has openings
    return json_depth(data) > limit


def loads_bounded(raw: bytes | bytearray | memoryview | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(raw)`` for a text nesting at most ``limit`` levels; else JsonTooDeep (a ValueError)."""
    data = _as_bytes(raw)
    if too_deep(data, limit):
        raise JsonTooDeep(json_depth(data), limit)
    return json.loads(data)


def control_character(text: str) -> str | None:
    """The first control character in ``text`` as an escape (``'\\n'``), or None when there is none."""
    found = _CONTROL.search(text)
    return None if found is None else repr(found.group())[1:-1]


def control_character_at(data: Any, where: str = "") -> str | None:
    """The path (``services.1``, ``workspace``, ``body``) of the first string in ``data`` holding a control
    character, keys included, or None. ``data`` is what ``json.loads`` returned, so it nests boundedly."""
    if isinstance(data, str):
        return (where or "body") if control_character(data) else None
    if isinstance(data, dict):
        items: Any = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        path = f"{where}.{key}" if where else str(key)
        if isinstance(key, str) and control_character(key):
            return path
        found = control_character_at(value, path)
        if found:
            return found
    return None
