"""One test result from several runners' sections (pytest, jest, vitest per package): summed counts,
failures in order with their runner, merged coverage, and a status that says what did not run (and
`failed` when tests failed: a run with failures is never `ok`)."""

from __future__ import annotations

from typing import Any

from .js_tests import merge_coverage
from .testparse import empty_counts, mark_failures


def _sum_counts(parts: list[dict[str, Any]]) -> dict[str, int]:
    total = empty_counts()
    for part in parts:
        for key, value in part.get("counts", {}).items():
            total[key] = total.get(key, 0) + value
    return total


def combine_sections(sections: dict[str, Any], tool: str = "run_tests") -> dict[str, Any]:
    """The merged result; each section keeps its own details under `runners`."""
    ran = [s for s in sections.values() if s.get("status") in ("ok", "partial")]
    skipped = [
        {"what": s.get("runner", name), "reason": s["reason"]}
        for name, s in sections.items()
        if s.get("status") == "skipped" and s.get("reason")
    ]
    for section in sections.values():
        skipped += section.get("skipped", [])
    if not ran:
        status = "skipped" if all(s.get("status") == "skipped" for s in sections.values()) else "error"
    elif any(s.get("status") == "error" for s in sections.values()):
        status = "incomplete"  # a runner could not run: what the others found is not the whole answer
    elif len(ran) < len(sections) or any(s.get("status") == "partial" for s in ran) or skipped:
        status = "partial"
    else:
        status = "ok"
    failures = [{"runner": s["runner"], **f} for s in ran for f in s.get("failures", [])]
    failed_tests = [t for s in ran for t in s.get("failed_tests", [])]
    failed_tests += [f["test"] for s in ran if s.get("runner") != "pytest" for f in s.get("failures", [])]
    coverage = merge_coverage(sections)
    for section in sections.values():
        section.pop("failures", None)
        section.pop("coverage", None)
    merged = {
        "tool": tool,
        "status": status,
        "counts": _sum_counts(ran),
        "duration_s": round(sum(s.get("duration_s", 0.0) for s in sections.values()), 3),
        "failures": failures,
        "failed_tests": failed_tests,
        "coverage": coverage,
        "skipped": skipped,
        "errors": [{"what": name, **s["error"]} for name, s in sections.items() if s.get("error")],
        "runners": sections,
    }
    return mark_failures(merged)
