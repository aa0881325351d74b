"""Replies sized for an agent: every tool's answer (text plus structured content) stays under a byte
budget by default.  Long lists are cut to the items that matter most (failures in order, findings by
severity, the lowest-covered files), each cut is listed under `more` with the total and the number of
pages, and `detail="full"` / `page=N` fetch the rest.  One place for every tool, applied where the
server builds its reply, so no tool can forget it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from ..core.errors import QualityError
from .facts import render_text

DEFAULT_BUDGET = 40_000
"""Bytes of one reply (text + structured content) when the caller asks for nothing more."""
FULL_BUDGET = 1_000_000
TEXT_SHARE = 0.3
"""Part of the budget the readable text may use; the structured content gets the rest."""
DETAILS = ("summary", "full")

# Items per page of a list, by its key, in summary mode (full mode shows FULL_FACTOR times as many).
# Keys not listed here are never cut by count; the byte guard below still bounds them.
PAGE_SIZES: dict[str, int] = {
    "failures": 15,
    "failed_tests": 40,
    "findings": 25,
    "vulnerabilities": 20,
    "not_audited": 20,
    "impacted_tests": 40,
    "selected_tests": 40,
    "changed_files": 40,
    "changed_functions": 40,
    "changed_modules": 40,
    "untested_changes": 30,
    "untested_changed_functions": 30,
    "recommendations": 20,
    "warnings": 15,
    "notes": 15,
    "edges": 200,
    "unparsable": 20,
    "runs": 20,
    "tests": 25,  # risk rankings
    "workers": 16,
}
COVERAGE_FILES_PAGE = 20
FULL_FACTOR = 20
_SEVERITY_RANK = {"critical": 0, "high": 1, "error": 1, "medium": 2, "moderate": 2, "warning": 3, "low": 4}
_OMITTED = "omitted to keep the reply small; call again with detail='full'"


@dataclass(frozen=True)
class Sizing:
    """What the caller asked for: `detail` ("summary" or "full") and `page` (1-based)."""

    detail: str = "summary"
    page: int = 1

    @classmethod
    def parse(cls, detail: str | None, page: int | None) -> Sizing:
        detail = detail or "summary"
        if detail not in DETAILS:
            raise QualityError("bad_argument", f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
        page = 1 if page is None else page
        if not isinstance(page, int) or not 1 <= page <= 100_000:
            raise QualityError("bad_argument", "page must be an integer between 1 and 100000")
        return cls(detail, page)

    @property
    def budget(self) -> int:
        return FULL_BUDGET if self.detail == "full" else DEFAULT_BUDGET

    def page_size(self, key: str, scale: float = 1.0) -> int | None:
        base = COVERAGE_FILES_PAGE if key == "coverage.files" else PAGE_SIZES.get(key)
        if base is None:
            return None
        size = base * (FULL_FACTOR if self.detail == "full" else 1)
        return max(1, int(size * scale))


def byte_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode("utf-8"))


def _ordered(key: str, items: list[Any]) -> list[Any]:
    """Findings by severity (most severe first, stable otherwise); every other list keeps its order,
    which the tool already chose (failures as they happened, impacted tests by path)."""
    if key in ("findings", "vulnerabilities") and all(isinstance(i, dict) for i in items):
        return sorted(items, key=lambda i: _SEVERITY_RANK.get(str(i.get("severity", "")).lower(), 5))
    return items


def _cut_coverage_files(files: dict[str, Any], where: str, sizing: Sizing, scale: float, more: list) -> dict:
    size = sizing.page_size("coverage.files", scale) or len(files)
    if len(files) <= size and sizing.page == 1:
        return files
    ranked = sorted(files.items(), key=lambda kv: (kv[1].get("line_percent", 100.0), kv[0]))
    start = (sizing.page - 1) * size
    shown = dict(ranked[start : start + size])
    more.append(_more_entry(where, len(files), len(shown), sizing.page, size, "lowest line coverage first"))
    return shown


def _more_entry(where: str, total: int, shown: int, page: int, size: int, order: str | None = None) -> dict:
    entry = {"path": where, "total": total, "shown": shown, "page": page, "pages": max(1, -(-total // size))}
    if order:
        entry["order"] = order
    return entry


def _cut(value: Any, where: str, sizing: Sizing, scale: float, more: list, include_edges: bool) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key == "files" and where.endswith("coverage") and isinstance(item, dict):
                out[key] = _cut_coverage_files(item, path, sizing, scale, more)
            elif key == "edges" and isinstance(item, list) and not include_edges:
                out[key] = []
                if item:
                    more.append({"path": path, "total": len(item), "shown": 0, "how": "include_edges=true"})
            else:
                out[key] = _cut(item, path, sizing, scale, more, include_edges)
        return out
    if isinstance(value, list):
        key = where.rsplit(".", 1)[-1]
        size = sizing.page_size(key, scale)
        items = value
        # `page` walks the reply's own lists; lists inside list items (a file's missing lines) stay on page 1
        page = 1 if "[]" in where else sizing.page
        if size is not None and (len(value) > size or page > 1):
            ordered = _ordered(key, value)
            start = (page - 1) * size
            items = ordered[start : start + size]
            order = "most severe first" if key in ("findings", "vulnerabilities") else None
            more.append(_more_entry(where, len(value), len(items), page, size, order))
        return [_cut(i, f"{where}[]", sizing, scale, more, include_edges) for i in items]
    if isinstance(value, str) and len(value) > 4000 * scale:
        limit = max(200, int(4000 * scale))
        return value[:limit] + f"... [{len(value) - limit} more characters]"
    return value


def _drop_largest(result: dict[str, Any], budget: int, more: list) -> dict[str, Any]:
    """Last resort: replace the largest subtrees (never status, counts, error) by a note."""
    keep = {"tool", "status", "counts", "error", "more", "mode", "reason", "score", "passed", "plan"}
    while byte_size(result) > budget:
        sizes = {k: byte_size(v) for k, v in result.items() if k not in keep and not isinstance(v, str | int | float)}
        sizes = {k: v for k, v in sizes.items() if v > 200}
        if not sizes:
            break
        key = max(sizes, key=lambda k: sizes[k])
        value = result[key]
        if isinstance(value, dict) and len(value) > 1:
            inner = {k: byte_size(v) for k, v in value.items()}
            biggest = max(inner, key=lambda k: inner[k])
            if inner[biggest] > 200:
                value = dict(value)
                value[biggest] = {"omitted_bytes": inner[biggest], "note": _OMITTED}
                more.append({"path": f"{key}.{biggest}", "omitted_bytes": inner[biggest]})
                result[key] = value
                continue
        result[key] = {"omitted_bytes": sizes[key], "note": _OMITTED}
        more.append({"path": key, "omitted_bytes": sizes[key]})
    return result


def size_result(result: dict[str, Any], sizing: Sizing, include_edges: bool = False) -> dict[str, Any]:
    """A copy of `result` whose JSON fits the structured part of the budget, with `more` saying what
    was cut and how to get it."""
    budget = int(sizing.budget * (1 - TEXT_SHARE))
    scale = 1.0
    sized: dict[str, Any] = result
    more: list[dict[str, Any]] = []
    for _attempt in range(6):
        more = []
        sized = _cut(result, "", sizing, scale, more, include_edges)
        sized["more"] = more
        if byte_size(sized) <= budget:
            break
        scale /= 2
    if byte_size(sized) > budget:
        sized = _drop_largest(copy.copy(sized), budget, more)
    sized["more"] = more
    sized["reply"] = {
        "detail": sizing.detail,
        "page": sizing.page,
        "budget_bytes": sizing.budget,
        "complete": not more,
        "how_to_get_more": None
        if not more
        else "call again with run_id and page=N for the next items of each list, or detail='full' for longer "
        "pages: both are read from the kept run, nothing runs again",
    }
    return sized


def build_reply(tool: str, result: dict[str, Any], sizing: Sizing, include_edges: bool = False) -> tuple[str, dict]:
    """(text content, structured content) of one reply, together within `sizing.budget` bytes."""
    sized = size_result(result, sizing, include_edges=include_edges)
    return render_text(tool, sized, int(sizing.budget * TEXT_SHARE)), sized
