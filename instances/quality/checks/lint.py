"""lint: ruff (JSON output) for Python; eslint and prettier for JavaScript/TypeScript (js_lint.py), and
`tsc --noEmit` where a tsconfig.json exists (ts_typecheck.py)."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ..core.errors import not_installed
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.runner import find_executable, read_bounded_file
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace
from .js_lint import run_eslint, run_prettier
from .ts_typecheck import run_tsc

# Rules whose findings mean the code is broken (it will not run as written); the rest is style/smell.
_ERROR_PREFIXES = ("E9", "F63", "F7", "F82", "PLE", "RUF200")


def ruff_severity(entry: dict[str, Any]) -> str:
    """ "error" for syntax errors, undefined names (F821-F823), invalid comparisons/statements
    (F63x, F7xx), E9xx, pylint errors (PLE) and an invalid pyproject.toml; "warning" otherwise.
    (Ruff's own JSON marks every violation "error", so its field does not distinguish them.)"""
    code = entry.get("code")
    return "error" if not code or str(code).startswith(_ERROR_PREFIXES) else "warning"


def parse_ruff_json(entries: list[dict[str, Any]], ws: Workspace) -> list[dict[str, Any]]:
    findings = []
    for entry in entries:
        location = entry.get("location") or {}
        end = entry.get("end_location") or {}
        findings.append(
            {
                "tool": "ruff",
                "file": ws.relative(entry.get("filename", "")),
                "line": location.get("row"),
                "column": location.get("column"),
                "end_line": end.get("row"),
                "rule": entry.get("code") or "syntax-error",
                "message": entry.get("message", ""),
                "severity": ruff_severity(entry),
                "fixable": entry.get("fix") is not None,
                "url": entry.get("url"),
            }
        )
    return findings


def summarize_findings(findings: list[dict[str, Any]]) -> dict[str, Any]:
    by_rule = Counter(f["rule"] for f in findings)
    return {
        "total": len(findings),
        "by_rule": dict(sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_severity": dict(Counter(f["severity"] for f in findings)),
        "files": len({f["file"] for f in findings}),
        "by_tool": dict(Counter(f["tool"] for f in findings)),
    }


async def run_ruff(ws: Workspace, profile: Profile, target: str, progress: Progress | None) -> dict[str, Any]:
    if not ws.python_files():
        return {"linter": "ruff", "status": "skipped", "reason": "no Python files in the workspace"}
    ruff = find_executable("ruff", ws.root)
    if ruff is None:
        return not_installed("ruff", "install ruff in the quality environment (the `quality` extra has it)")
    timeout = profile.timeout("lint")
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="paradise-ruff-") as tmpdir:
        out = Path(tmpdir) / "ruff.json"
        argv = [ruff, "check", "--output-format=json", "--exit-zero", "--no-cache", f"--output-file={out}"]
        _, pyproject_error = ws.pyproject()
        if pyproject_error:
            argv.append("--isolated")
            notes.append(f"{pyproject_error}; ran ruff with its default rules (--isolated)")
        run = await ToolRun(profile, timeout, progress).run([*argv, target], "ruff", ws.root)
        problem = run.problem(timeout)
        text = read_bounded_file(out)
    if problem or run.returncode != 0 or text is None:
        return {"linter": "ruff", "status": "error", "duration_s": run.duration_s, "error": run.failure(timeout)}
    findings = parse_ruff_json(json.loads(text or "[]"), ws)
    return {
        "linter": "ruff",
        "status": "ok",
        "executable": ruff,
        "duration_s": run.duration_s,
        "notes": notes,
        "findings": findings,
    }


async def lint(
    ws: Workspace,
    profile: Profile,
    *,
    path: str | None = None,
    javascript: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    target = ws.target(path)
    sections: dict[str, Any] = {"ruff": await run_ruff(ws, profile, target, progress)}
    if javascript:
        for name, run_js_linter in (("eslint", run_eslint), ("prettier", run_prettier), ("tsc", run_tsc)):
            section = await run_js_linter(ws, profile, target, progress)
            if section is not None:
                sections[name] = section
    if len(sections) > 1 and sections["ruff"]["status"] == "skipped" and not ws.python_files():
        sections.pop("ruff")  # a JavaScript-only workspace: no Python to lint is no gap
    findings = [f for s in sections.values() for f in s.get("findings", [])]
    findings.sort(key=lambda f: (f["file"], f["line"] or 0, f["column"] or 0, f["rule"]))
    skipped = [{"what": name, "reason": s["reason"]} for name, s in sections.items() if s["status"] == "skipped"]
    errors = [{"what": name, **s["error"]} for name, s in sections.items() if s["status"] == "error"]
    ran = [s for s in sections.values() if s["status"] == "ok"]
    if not ran:
        status = "skipped" if not errors else "error"
    elif errors:  # a linter that could not run: what the others found is not the whole answer
        status = "incomplete"
    else:
        status = "partial" if skipped or any(s.get("notes") for s in ran) else "ok"
    for section in sections.values():
        section.pop("findings", None)
    return {
        "tool": "lint",
        "status": status,
        "counts": summarize_findings(findings),
        "findings": findings[: profile.max_findings],
        "findings_truncated": len(findings) > profile.max_findings,
        "skipped": skipped,
        "errors": errors,
        "notes": [n for s in ran for n in s.get("notes", [])],
        "linters": sections,
    }
