"""Metrics of one quality run, the 0-100 quality score, threshold checks, and recommendations derived
only from findings (never invented text).

Quality score (documented in README.md too).  Up to five components, each with a weight:

    tests     40 x passed / (passed + failed + errors)          over unit, E2E and API tests; 0 when none ran
    coverage  25 x line coverage % / 100                        Python and JS lines together
    lint      15 x sum over languages of share x max(0, 1 - findings per 1000 non-blank lines / 20),
              share = the language's non-blank lines / all (Python: ruff; JavaScript/TypeScript:
              eslint + prettier), so each language weighs by its own size
    security  20 x max(0, 1 - penalty / 20), penalty = 10 per high, 4 per medium, 1 per low
              finding (bandit), 4 per known-vulnerable Python dependency, npm critical/high 10,
              moderate 4, low 1
    performance 10 x Lighthouse performance score / 100

    score = 100 x sum(earned) / sum(weights of the components that were measured), rounded (half up)

A component whose tool did not run in the profile (or could not measure, e.g. coverage disabled) is
left out of both sums, and the report lists it under `score.excluded`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

WEIGHTS = {"tests": 40.0, "coverage": 25.0, "lint": 15.0, "security": 20.0, "performance": 10.0}
LINT_LANGUAGES = {"ruff": "python", "eslint": "javascript", "prettier": "javascript", "tsc": "javascript"}
LINT_ZERO_DENSITY = 20.0  # findings per 1000 lines at which the lint component reaches 0
SECURITY_PENALTY = {"high": 10.0, "medium": 4.0, "low": 1.0}
NPM_PENALTY = {"critical": 10.0, "high": 10.0, "moderate": 4.0, "low": 1.0}
PIP_AUDIT_PENALTY = 4.0


def security_key(finding: dict[str, Any]) -> str:
    """Identity of a code finding across runs: rule, file and message (not the line, which moves)."""
    return f"{finding.get('rule')}|{finding.get('file')}|{finding.get('message')}"


def _pass_rate(counts: dict[str, Any]) -> float | None:
    decided = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("errors", 0)
    return round(100.0 * counts.get("passed", 0) / decided, 2) if decided else None


def collect_metrics(sections: dict[str, Any], python_lines: int, javascript_lines: int = 0) -> dict[str, Any]:
    """The numbers a report is judged on, from the sections the profile ran."""
    metrics: dict[str, Any] = {"python_lines": python_lines, "javascript_lines": javascript_lines}
    for step in ("e2e", "api"):
        section = sections.get(step)
        if section and section.get("status") in ("ok", "partial", "failed"):
            metrics[step] = {**section["counts"], "pass_rate": _pass_rate(section["counts"])}
    performance = sections.get("performance")
    if performance and performance.get("status") in ("ok", "partial") and performance.get("scores"):
        metrics["performance"] = {"scores": performance["scores"], "metrics": performance.get("metrics", {})}
    tests = sections.get("tests")
    if tests:
        counts = tests.get("counts") or {}
        decided = counts.get("passed", 0) + counts.get("failed", 0) + counts.get("errors", 0)
        metrics["tests"] = {
            **counts,
            "pass_rate": round(100.0 * counts.get("passed", 0) / decided, 2) if decided else None,
        }
        cov = (tests.get("coverage") or {}).get("total")
        if cov:
            metrics["coverage"] = {
                "line_percent": cov["line_percent"],
                "branch_percent": cov["branch_percent"] if cov.get("branch_measured") else None,
            }
    lint = sections.get("lint")
    if lint and lint.get("status") in ("ok", "partial", "incomplete"):
        metrics["lint"] = {
            "total": lint["counts"]["total"],
            "by_rule": lint["counts"]["by_rule"],
            "by_severity": lint["counts"]["by_severity"],
            "by_language": _by_language(lint["counts"].get("by_tool", {})),
        }
    security = sections.get("security")
    if security and security.get("status") in ("ok", "partial", "incomplete"):
        findings = security.get("findings", [])
        by_sev = Counter(f["severity"] for f in findings)
        metrics["security"] = {
            "total": security["counts"]["total"],
            "by_severity": {s: by_sev.get(s, 0) for s in ("high", "medium", "low")},
            "keys": sorted({security_key(f) for f in findings}),
        }
    dependencies = sections.get("dependencies")
    if dependencies:
        deps = _dependency_metrics(dependencies.get("scanners", {}))
        if deps is not None:
            metrics["dependencies"] = deps
    return metrics


def _by_language(by_tool: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for tool, count in by_tool.items():
        language = LINT_LANGUAGES.get(tool, "other")
        out[language] = out.get(language, 0) + count
    return out


def _lint_component(metrics: dict[str, Any]) -> float:
    """15 x the line-weighted health of each language's lint (see the module docstring)."""
    lint = metrics["lint"]
    by_language = dict(lint.get("by_language") or {"python": lint["total"]})
    lines = {"python": metrics.get("python_lines", 0), "javascript": metrics.get("javascript_lines", 0)}
    languages = [lang for lang in ("python", "javascript") if lines[lang] or by_language.get(lang)]
    languages = languages or ["python"]
    total_lines = sum(max(lines[lang], 1) for lang in languages)
    earned = 0.0
    for lang in languages:
        kloc = max(lines[lang], 1) / 1000.0
        density = by_language.get(lang, 0) / kloc
        earned += max(lines[lang], 1) / total_lines * max(0.0, 1.0 - density / LINT_ZERO_DENSITY)
    return WEIGHTS["lint"] * earned


def _dependency_metrics(scanners: dict[str, Any]) -> dict[str, Any] | None:
    pip, npm = scanners.get("pip-audit"), scanners.get("npm-audit")
    audited = [s for s in (pip, npm) if s and s.get("status") in ("ok", "partial")]
    if not audited:
        return None
    return {
        "python_vulnerabilities": len(pip.get("vulnerabilities", [])) if pip in audited and pip else 0,
        "npm_by_severity": dict(npm.get("by_severity", {})) if npm in audited and npm else {},
        "keys": sorted(
            {
                f"{v['package']}|{v.get('id') or v.get('severity')}"
                for s in audited
                for v in s.get("vulnerabilities", [])
            }
        ),
    }


def quality_score(metrics: dict[str, Any]) -> dict[str, Any]:
    """The score and each component's earned points (see the module docstring for the formula)."""
    components: dict[str, float] = {}
    kinds = [metrics[k] for k in ("tests", "e2e", "api") if metrics.get(k) is not None]
    if kinds:
        rate = _pass_rate({k: sum(c.get(k, 0) for c in kinds) for k in ("passed", "failed", "errors")})
        components["tests"] = WEIGHTS["tests"] * (rate / 100.0 if rate is not None else 0.0)
    if "coverage" in metrics:
        components["coverage"] = WEIGHTS["coverage"] * metrics["coverage"]["line_percent"] / 100.0
    if "lint" in metrics:
        components["lint"] = _lint_component(metrics)
    perf = ((metrics.get("performance") or {}).get("scores") or {}).get("performance")
    if perf is not None:
        components["performance"] = WEIGHTS["performance"] * perf / 100.0
    if "security" in metrics:
        sev = metrics["security"]["by_severity"]
        penalty = sum(SECURITY_PENALTY[s] * sev.get(s, 0) for s in SECURITY_PENALTY)
        deps = metrics.get("dependencies") or {}
        penalty += PIP_AUDIT_PENALTY * deps.get("python_vulnerabilities", 0)
        penalty += sum(NPM_PENALTY.get(s, 0.0) * n for s, n in deps.get("npm_by_severity", {}).items())
        components["security"] = WEIGHTS["security"] * max(0.0, 1.0 - penalty / WEIGHTS["security"])
    measured = sum(WEIGHTS[name] for name in components)
    value = int(100.0 * sum(components.values()) / measured + 0.5) if measured else None  # half rounds up
    return {
        "value": value,
        "components": {
            name: {"earned": round(points, 2), "weight": WEIGHTS[name]} for name, points in components.items()
        },
        "excluded": sorted(set(WEIGHTS) - set(components)),
    }


_COMPONENT_OF_STEP = {
    "tests": "tests",
    "e2e": "tests",
    "api": "tests",
    "lint": "lint",
    "security": "security",
    "dependencies": "security",
    "performance": "performance",
}


def not_measured(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """What the score could not measure: each step of the profile that could not run (or ran only in part
    because a check could not), the component it weighs on, the reason and the fix."""
    missing = []
    for step, section in sections.items():
        if (section or {}).get("status") not in ("error", "incomplete"):
            continue
        error = section.get("error") or {}
        if error.get("code") == "nothing_ran" or step not in _COMPONENT_OF_STEP:
            continue
        missing.append(
            {
                "step": step,
                "component": _COMPONENT_OF_STEP[step],
                "reason": error.get("message") or "the step could not run",
                "fix": error.get("fix"),
            }
        )
    return missing


def check_thresholds(thresholds: dict[str, float], metrics: dict[str, Any], score: int | None) -> list[dict[str, Any]]:
    """Each profile threshold with the actual value and whether it holds (None: not measured)."""
    actual = {
        "min_pass_rate": (metrics.get("tests") or {}).get("pass_rate"),
        "min_coverage": (metrics.get("coverage") or {}).get("line_percent"),
        "max_lint_findings": (metrics.get("lint") or {}).get("total"),
        "max_high_severity": ((metrics.get("security") or {}).get("by_severity") or {}).get("high"),
        "max_medium_severity": ((metrics.get("security") or {}).get("by_severity") or {}).get("medium"),
        "min_score": score,
        "min_performance": ((metrics.get("performance") or {}).get("scores") or {}).get("performance"),
    }
    checks = []
    for name, limit in thresholds.items():
        value = actual.get(name)
        passed = None if value is None else (value >= limit if name.startswith("min_") else value <= limit)
        checks.append({"name": name, "limit": limit, "actual": value, "passed": passed})
    return checks


def untested_changed_functions(changes: dict[str, Any] | None, coverage: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Changed functions with no executed line in their body under the test run's coverage."""
    if not changes or not coverage:
        return []
    files = coverage.get("files", {})
    result = []
    for fn in changes.get("changed_functions", []):
        if fn["kind"] != "function" or fn["change"] == "removed" or fn["path"] not in files:
            continue
        body = range(fn.get("body_start_line") or fn["start_line"], (fn["end_line"] or 0) + 1)
        executed = set(files[fn["path"]].get("_executed_lines", []))
        if not executed.intersection(body):
            result.append(
                {"path": fn["path"], "name": fn["name"], "start_line": fn["start_line"], "end_line": fn["end_line"]}
            )
    return result


def report_recommendations(
    sections: dict[str, Any], metrics: dict[str, Any], checks: list[dict[str, Any]], untested: list[dict[str, Any]]
) -> list[str]:
    """Recommendations that each point at a concrete finding of this run."""
    recs: list[str] = []
    tests = sections.get("tests") or {}
    counts = tests.get("counts") or {}
    bad = counts.get("failed", 0) + counts.get("errors", 0)
    if bad:
        first = (tests.get("failures") or [{}])[0]
        recs.append(
            f"Fix {bad} failing test(s); first: {first.get('test')} at {first.get('file')}:{first.get('line')}"
            f" - {first.get('message', '')[:160]}"
        )
    if tests and counts.get("total", 0) == 0 and tests.get("status") in ("skipped", "ok"):
        recs.append("No tests ran: add tests (test_*.py) so changes can be verified")
    for fn in untested[:10]:
        recs.append(
            f"Changed function {fn['name']} in {fn['path']} (lines {fn['start_line']}-{fn['end_line']})"
            " is not executed by any test"
        )
    for path in ((sections.get("changes") or {}).get("untested_changes") or [])[:10]:
        recs.append(f"Changed module {path} is not imported by any test")
    for f in (sections.get("security") or {}).get("findings", []):
        if f["severity"] == "high":
            recs.append(f"Fix high-severity {f['rule']} ({f.get('name')}) at {f['file']}:{f['line']}: {f['message']}")
    for step, label in (("e2e", "end-to-end"), ("api", "API")):
        failures = (sections.get(step) or {}).get("failures") or []
        if failures:
            first = failures[0]
            recs.append(
                f"Fix {len(failures)} failing {label} test(s); first: {first.get('test')}"
                f" - {str(first.get('message', ''))[:160]}"
            )
    for audit in ((sections.get("performance") or {}).get("failing_audits") or [])[:3]:
        shown = audit.get("display") or f"score {audit.get('score')}"
        recs.append(f"Lighthouse: improve {audit.get('title') or audit['audit']} ({shown})")
    lint = metrics.get("lint")
    if lint and lint["total"]:
        top = ", ".join(f"{rule} ({n})" for rule, n in list(lint["by_rule"].items())[:3])
        recs.append(f"Resolve {lint['total']} lint finding(s); most frequent: {top}")
    for check in checks:
        if check["passed"] is False:
            recs.append(f"Threshold {check['name']} not met: {check['actual']} vs limit {check['limit']}")
    for section in sections.values():
        for skipped in (section or {}).get("skipped", []):
            recs.append(f"{skipped['what']} was skipped: {skipped['reason']}")
    return recs
