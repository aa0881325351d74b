"""Markdown and HTML renderings of a quality report (the JSON file is the report itself)."""

from __future__ import annotations

import html
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    m = report["metrics"]
    tests = m.get("tests") or {}
    cov = m.get("coverage") or {}
    lint = m.get("lint") or {}
    sec = m.get("security") or {}
    rows = [("Quality score", _fmt(report["score"]["value"]))]
    if tests:
        rows += [
            (
                "Tests",
                f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, "
                f"{tests.get('skipped', 0)} skipped, {tests.get('errors', 0)} errors",
            ),
            ("Pass rate", f"{_fmt(tests.get('pass_rate'))}%"),
        ]
    if cov:
        rows += [
            ("Line coverage", f"{_fmt(cov.get('line_percent'))}%"),
            ("Branch coverage", f"{_fmt(cov.get('branch_percent'))}%"),
        ]
    if lint:
        by_language = ", ".join(f"{k} {v}" for k, v in (lint.get("by_language") or {}).items())
        rows.append(("Lint findings", _fmt(lint.get("total")) + (f" ({by_language})" if by_language else "")))
    for key, label in (("e2e", "E2E tests"), ("api", "API assertions")):
        if m.get(key):
            c = m[key]
            rows.append(
                (label, f"{c.get('passed', 0)} passed, {c.get('failed', 0)} failed, {c.get('errors', 0)} errors")
            )
    perf = m.get("performance") or {}
    if perf:
        scores = ", ".join(f"{k} {_fmt(v)}" for k, v in perf.get("scores", {}).items())
        timing = perf.get("metrics", {})
        rows.append(("Lighthouse", scores))
        rows.append(
            (
                "Core metrics",
                f"FCP {_fmt(timing.get('fcp_ms'))} ms, LCP {_fmt(timing.get('lcp_ms'))} ms, "
                f"TBT {_fmt(timing.get('tbt_ms'))} ms, CLS {_fmt(timing.get('cls'))}",
            )
        )
    if sec:
        sev = sec.get("by_severity", {})
        rows.append(
            (
                "Security findings",
                f"{sec.get('total', 0)} (high {sev.get('high', 0)}, "
                f"medium {sev.get('medium', 0)}, low {sev.get('low', 0)})",
            )
        )
    return rows


def _findings(report: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    sections = report["sections"]
    return [
        ("Test failures", (sections.get("tests") or {}).get("failures", [])),
        ("Lint findings", (sections.get("lint") or {}).get("findings", [])),
        ("Security findings", (sections.get("security") or {}).get("findings", [])),
        ("E2E failures", (sections.get("e2e") or {}).get("failures", [])),
        ("API failures", (sections.get("api") or {}).get("failures", [])),
    ]


def _finding_text(f: dict[str, Any]) -> tuple[str, str, str]:
    where = f"{f.get('file')}:{f.get('line')}"
    what = f.get("rule") or f.get("test") or ""
    return where, str(what), str(f.get("message", ""))


def to_markdown(report: dict[str, Any], limit: int = 100) -> str:
    lines = [
        f"# Quality report ({report['profile']['name']})",
        "",
        f"Workspace: `{report['workspace']}`  ",
        f"Generated: {report['generated_at']}  ",
        f"Result: **{'PASSED' if report['passed'] else 'FAILED'}**",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in _rows(report)]
    if report["thresholds"]:
        lines += ["", "## Thresholds", "", "| threshold | limit | actual | result |", "|---|---|---|---|"]
        for c in report["thresholds"]:
            result = "not measured" if c["passed"] is None else ("ok" if c["passed"] else "FAILED")
            lines.append(f"| {c['name']} | {_fmt(c['limit'])} | {_fmt(c['actual'])} | {result} |")
    if report["recommendations"]:
        lines += ["", "## Recommendations", ""] + [f"- {r}" for r in report["recommendations"]]
    for title, items in _findings(report):
        if items:
            lines += ["", f"## {title} ({len(items)})", "", "| where | rule/test | message |", "|---|---|---|"]
            for f in items[:limit]:
                where, what, msg = _finding_text(f)
                lines.append(f"| {where} | {what} | {msg.splitlines()[0] if msg else ''} |".replace("\n", " "))
    changes = report["sections"].get("changes")
    if changes and changes.get("status") == "ok":
        lines += ["", "## Changes", "", f"Base: `{changes['base_ref']}` ({changes['base_commit'][:12]})", ""]
        lines += [
            f"- `{c['path']}` {c['status']} (+{c['added_lines']} -{c['removed_lines']})"
            for c in changes["changed_files"][:limit]
        ]
        if changes["impacted_tests"]:
            lines += ["", "Impacted tests:", ""]
            lines += [f"- `{t['path']}`: {t['reason']}" for t in changes["impacted_tests"][:limit]]
    if report["skipped"]:
        lines += ["", "## Skipped", ""] + [f"- {s['what']}: {s['reason']}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
    ".ok{color:#17692b}.bad{color:#b00020;font-weight:bold}code{background:#f5f5f5}"
)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def to_html(report: dict[str, Any], limit: int = 200) -> str:
    verdict = "PASSED" if report["passed"] else "FAILED"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Quality report {html.escape(report['generated_at'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>Quality report ({html.escape(report['profile']['name'])})</h1>",
        f"<p>Workspace <code>{html.escape(report['workspace'])}</code>,"
        f" generated {html.escape(report['generated_at'])}."
        f" Result: <span class='{'ok' if report['passed'] else 'bad'}' id='verdict'>{verdict}</span></p>",
        _table(["metric", "value"], [[k, v] for k, v in _rows(report)]),
    ]
    if report["thresholds"]:
        parts.append(
            "<h2>Thresholds</h2>"
            + _table(
                ["threshold", "limit", "actual", "result"],
                [
                    [
                        c["name"],
                        _fmt(c["limit"]),
                        _fmt(c["actual"]),
                        "not measured" if c["passed"] is None else ("ok" if c["passed"] else "FAILED"),
                    ]
                    for c in report["thresholds"]
                ],
            )
        )
    if report["recommendations"]:
        items = "".join(f"<li>{html.escape(r)}</li>" for r in report["recommendations"])
        parts.append(f"<h2>Recommendations</h2><ul>{items}</ul>")
    for title, findings in _findings(report):
        if findings:
            rows = [list(_finding_text(f)) for f in findings[:limit]]
            parts.append(
                f"<h2>{html.escape(title)} ({len(findings)})</h2>" + _table(["where", "rule/test", "message"], rows)
            )
    if report["skipped"]:
        items = "".join(f"<li>{html.escape(s['what'])}: {html.escape(s['reason'])}</li>" for s in report["skipped"])
        parts.append(f"<h2>Skipped</h2><ul>{items}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
