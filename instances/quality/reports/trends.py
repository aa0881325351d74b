"""quality_trends: compare the last N quality runs from history.jsonl (tests, coverage, findings,
score) and derive recommendations from what changed between them."""

from __future__ import annotations

from typing import Any

# metric name -> (how to read it from a history entry, True when higher is better)
_SERIES: dict[str, tuple[tuple[str, ...], bool]] = {
    "score": (("score",), True),
    "tests_passed": (("metrics", "tests", "passed"), True),
    "tests_failed": (("metrics", "tests", "failed"), False),
    "test_errors": (("metrics", "tests", "errors"), False),
    "line_coverage": (("metrics", "coverage", "line_percent"), True),
    "branch_coverage": (("metrics", "coverage", "branch_percent"), True),
    "lint_findings": (("metrics", "lint", "total"), False),
    "security_findings": (("metrics", "security", "total"), False),
    "security_high": (("metrics", "security", "by_severity", "high"), False),
}


def _get(entry: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = entry
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def history_entry(report: dict[str, Any]) -> dict[str, Any]:
    """The one line of history.jsonl that a report leaves behind."""
    return {
        "generated_at": report["generated_at"],
        "profile": report["profile"]["name"],
        "score": report["score"]["value"],
        "passed": report["passed"],
        "metrics": report["metrics"],
        "report": report["files"]["json"],
    }


def _direction(first: Any, last: Any, higher_is_better: bool) -> str:
    if first is None or last is None:
        return "not measured"
    if last == first:
        return "unchanged"
    return "improving" if (last > first) == higher_is_better else "worsening"


def trend_recommendations(previous: dict[str, Any], last: dict[str, Any]) -> list[str]:
    """What got worse from the previous run to the last one, naming the rules and findings."""
    recs: list[str] = []
    prev_lint = _get(previous, ("metrics", "lint", "by_rule")) or {}
    last_lint = _get(last, ("metrics", "lint", "by_rule")) or {}
    prev_total, last_total = _get(previous, ("metrics", "lint", "total")), _get(last, ("metrics", "lint", "total"))
    if prev_total is not None and last_total is not None and last_total > prev_total:
        grown = sorted(
            ((r, n - prev_lint.get(r, 0)) for r, n in last_lint.items() if n > prev_lint.get(r, 0)),
            key=lambda kv: (-kv[1], kv[0]),
        )
        detail = ", ".join(f"{rule} +{n}" for rule, n in grown[:5])
        recs.append(f"Lint findings rose from {prev_total} to {last_total}" + (f" ({detail})" if detail else ""))
    prev_keys = set(_get(previous, ("metrics", "security", "keys")) or [])
    new_keys = [k for k in _get(last, ("metrics", "security", "keys")) or [] if k not in prev_keys]
    if _get(previous, ("metrics", "security")) is not None and new_keys:
        shown = "; ".join(" ".join(k.split("|", 2)[:2]) for k in new_keys[:5])
        recs.append(f"{len(new_keys)} new security finding(s) since the previous run: {shown}")
    prev_deps = set(_get(previous, ("metrics", "dependencies", "keys")) or [])
    new_deps = [k for k in _get(last, ("metrics", "dependencies", "keys")) or [] if k not in prev_deps]
    if new_deps:
        recs.append(f"{len(new_deps)} newly vulnerable dependency finding(s): {', '.join(new_deps[:5])}")
    prev_cov, last_cov = (_get(e, ("metrics", "coverage", "line_percent")) for e in (previous, last))
    if prev_cov is not None and last_cov is not None and last_cov < prev_cov:
        recs.append(f"Line coverage dropped from {prev_cov}% to {last_cov}%")
    prev_bad = sum(_get(previous, ("metrics", "tests", k)) or 0 for k in ("failed", "errors"))
    last_bad = sum(_get(last, ("metrics", "tests", k)) or 0 for k in ("failed", "errors"))
    if last_bad > prev_bad:
        recs.append(f"Failing tests rose from {prev_bad} to {last_bad}")
    if previous.get("score") is not None and last.get("score") is not None and last["score"] < previous["score"]:
        recs.append(f"Quality score fell from {previous['score']} to {last['score']}")
    return recs


def compare_runs(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Series, first-to-last directions and last-vs-previous deltas over the given history entries."""
    runs = [
        {
            "generated_at": e.get("generated_at"),
            "profile": e.get("profile"),
            "report": e.get("report"),
            **{name: _get(e, path) for name, (path, _) in _SERIES.items()},
        }
        for e in entries
    ]
    result: dict[str, Any] = {"runs": runs, "count": len(runs)}
    if len(entries) < 2:
        result.update(
            trends={},
            changes_since_previous={},
            recommendations=[],
            note="at least two quality_report runs are needed to show a trend",
        )
        return result
    first, previous, last = runs[0], runs[-2], runs[-1]
    result["trends"] = {name: _direction(first[name], last[name], better) for name, (_, better) in _SERIES.items()}
    result["changes_since_previous"] = {
        name: {
            "previous": previous[name],
            "last": last[name],
            "delta": None if previous[name] is None or last[name] is None else round(last[name] - previous[name], 2),
        }
        for name in _SERIES
    }
    result["recommendations"] = trend_recommendations(entries[-2], entries[-1])
    return result
