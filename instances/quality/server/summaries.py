"""The short text summary that accompanies each tool's structured result."""

from __future__ import annotations

from typing import Any


def _counts(c: dict[str, Any] | None) -> str:
    c = c or {}
    return (
        f"{c.get('passed', 0)} passed, {c.get('failed', 0)} failed, {c.get('skipped', 0)} skipped, "
        f"{c.get('errors', 0)} errors"
    )


def _skipped(result: dict[str, Any]) -> str:
    items = result.get("skipped") or []
    return (" Skipped: " + "; ".join(f"{s['what']} ({s['reason']})" for s in items) + ".") if items else ""


def _coverage(cov: dict[str, Any] | None) -> str:
    if not cov:
        return ""
    total = cov["total"]
    branch = f", branch {total['branch_percent']}%" if total.get("branch_measured") else ""
    return f" Coverage: line {total['line_percent']}%{branch}."


def _first_failure(failures: list[dict[str, Any]] | None) -> str:
    if not failures:
        return ""
    f = failures[0]
    return f" First failure: {f.get('file')}:{f.get('line')} {str(f.get('message', '')).splitlines()[0][:200]}."


def _tests(r: dict[str, Any]) -> str:
    return (
        f"Tests: {_counts(r.get('counts'))} in {r.get('duration_s', 0)}s.{_coverage(r.get('coverage'))}"
        f"{_first_failure(r.get('failures'))}{_skipped(r)}"
    )


def _lint(r: dict[str, Any]) -> str:
    counts = r["counts"]
    top = ", ".join(f"{rule} x{n}" for rule, n in list(counts["by_rule"].items())[:5])
    return f"Lint: {counts['total']} findings in {counts['files']} files" + (f" ({top})." if top else ".") + _skipped(r)


def _security(r: dict[str, Any]) -> str:
    counts = r["counts"]
    sev = ", ".join(f"{k} {v}" for k, v in sorted(counts["by_severity"].items()))
    return (
        f"Security: {counts['total']} code findings"
        + (f" ({sev})" if sev else "")
        + f", {counts['dependency_vulnerabilities']} vulnerable dependencies."
        + (f" {r['error']['message']}." if r.get("error") else "")
        + _skipped(r)
    )


def _changes(r: dict[str, Any]) -> str:
    py = sum(1 for f in r["changed_files"] if f["path"].endswith(".py"))
    js_packages = (r.get("javascript") or {}).get("packages") or []
    text = (
        f"{len(r['changed_files'])} files changed ({py} Python) against {r['base_ref']}, "
        f"{len(r['changed_functions'])} functions/classes touched; "
        f"{len(r['impacted_tests'])} test files impacted of "
        f"{r['import_graph']['test_modules'] + sum(p['test_files'] for p in js_packages)}."
    )
    if r["full_suite_required"]:
        text += " Full suite required: " + "; ".join(r["fallback_reasons"]) + "."
    return text


def _app(r: dict[str, Any]) -> str:
    app = r.get("app") or {}
    return (
        f" App: {' '.join(app['start_command'])} (ready after {app.get('ready_after_s')}s)."
        if app.get("start_command")
        else ""
    )


def _e2e(r: dict[str, Any]) -> str:
    artifacts = f" Traces/screenshots: {r['artifacts_dir']}." if r.get("artifacts_dir") and r.get("failures") else ""
    return (
        f"E2E (Playwright, Chromium): {_counts(r.get('counts'))} in {r.get('duration_s', 0)}s."
        f"{_first_failure(r.get('failures'))}{artifacts}{_app(r)}"
    )


def _api(r: dict[str, Any]) -> str:
    requests = r.get("requests") or []
    failing = next((f for f in r.get("failures") or []), None)
    first = f" First failure: {failing['test']}: {str(failing.get('message'))[:200]}." if failing else ""
    return (
        f"API (Newman): {len(requests)} requests, assertions {_counts(r.get('counts'))}"
        f" from {', '.join(r.get('collections') or [])}.{first}{_app(r)}"
    )


def _performance(r: dict[str, Any]) -> str:
    scores = ", ".join(f"{k} {v}" for k, v in (r.get("scores") or {}).items())
    m = r.get("metrics") or {}
    files = f" Report: {r['files'].get('html') or r['files'].get('json')}." if r.get("files") else ""
    return (
        f"Lighthouse {r.get('url')}: {scores}. FCP {m.get('fcp_ms')} ms, LCP {m.get('lcp_ms')} ms, "
        f"TBT {m.get('tbt_ms')} ms, CLS {m.get('cls')}.{files}{_app(r)}"
    )


def _impacted(r: dict[str, Any]) -> str:
    text = f"Mode {r['mode']}: {r['reason']}."
    if r.get("tests"):
        text += " " + _tests(r["tests"])
    return text


def _report(r: dict[str, Any]) -> str:
    verdict = "passed" if r["passed"] else "FAILED"
    files = f"Report: {r['files']['html']} (also .json, .md)." if r.get("files") else "Report files NOT written."
    missing = r["score"].get("not_measured") or []
    unmeasured = (
        " NOT measured (could not run): "
        + "; ".join(f"{m['component']} ({m['step']}: {m['reason']})" for m in missing)
        + ". The score leaves these out."
        if missing
        else ""
    )
    return (
        f"Quality score {r['score']['value']}/100 ({r['profile']['name']} profile), thresholds {verdict}."
        f"{unmeasured} {files} {len(r['recommendations'])} recommendations.{_skipped(r)}"
    )


def _trends(r: dict[str, Any]) -> str:
    if r["count"] < 2:
        return f"{r['count']} run(s) in history: {r.get('note', '')}"
    runs = r["runs"]
    trends = ", ".join(f"{k} {v}" for k, v in r["trends"].items() if v not in ("not measured", "unchanged"))
    return (
        f"{r['count']} runs compared: score {runs[0]['score']} -> {runs[-1]['score']}"
        + (f"; {trends}" if trends else "; no metric changed")
        + "."
    )


_SUMMARIES = {
    "run_tests": _tests,
    "lint": _lint,
    "security_scan": _security,
    "analyze_changes": _changes,
    "run_impacted_tests": _impacted,
    "quality_report": _report,
    "run_e2e": _e2e,
    "run_api_tests": _api,
    "run_performance": _performance,
    "quality_trends": _trends,
}


def summarize(tool: str, result: dict[str, Any]) -> str:
    status = result.get("status", "ok")
    if status == "error":
        error = result.get("error") or {}
        return f"{tool} failed: {error.get('message', 'unknown error')} ({error.get('code', 'error')})"
    if status == "skipped" and tool != "run_impacted_tests":
        return f"{tool}: nothing to do.{_skipped(result)}"
    fn = _SUMMARIES.get(tool)
    try:
        text = fn(result) if fn else f"{tool}: {status}"
    except (KeyError, TypeError, IndexError):
        text = f"{tool}: {status}"
    return text if status == "ok" else f"[{status}] {text}"
