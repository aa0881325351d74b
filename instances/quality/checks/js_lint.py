"""lint's JavaScript/TypeScript part: eslint (the workspace's own config, else the bundled default flat
config) and prettier in check mode (`--list-different`, plus the first line that differs per file)."""

from __future__ import annotations

import difflib
import json
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import NODE_FIX, not_installed
from ..core.js_packages import JS_SUFFIXES, default_eslint_config, major_version, node_env, node_tool, tool_version
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.runner import read_bounded_file
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace

_PRETTIER_GLOB = "**/*.{js,jsx,ts,tsx,mjs,cjs,mts,cts}"
_PRETTIER_DETAIL_FILES = 10  # files whose first differing line is looked up (one prettier run each)
_FLAT_CONFIGS = ("eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", "eslint.config.ts")


def js_files_under(ws: Workspace, target: str) -> list[str]:
    prefix = "" if target == "." else target.removeprefix("./").rstrip("/") + "/"
    rel = target.removeprefix("./")
    return [p for p in ws.files(JS_SUFFIXES) if not prefix or p.startswith(prefix) or p == rel]


def parse_eslint_report(files: list[dict[str, Any]], ws: Workspace) -> list[dict[str, Any]]:
    findings = []
    for file in files:
        for message in file.get("messages", []):
            findings.append(
                {
                    "tool": "eslint",
                    "file": ws.relative(file.get("filePath", "")),
                    "line": message.get("line"),
                    "column": message.get("column"),
                    "end_line": message.get("endLine"),
                    "rule": message.get("ruleId") or ("parse-error" if message.get("fatal") else "eslint"),
                    "message": message.get("message", ""),
                    "severity": "error" if message.get("severity") == 2 else "warning",
                    "fixable": "fix" in message,
                    "url": None,
                }
            )
    return findings


def first_difference(original: str, formatted: str) -> int:
    """1-based line of the first difference between a file and its formatted text."""
    matcher = difflib.SequenceMatcher(None, original.splitlines(), formatted.splitlines(), autojunk=False)
    for tag, i1, _i2, _j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            return i1 + 1
    return 1


async def run_eslint(ws: Workspace, profile: Profile, target: str, progress: Progress | None) -> dict[str, Any] | None:
    """eslint over the JS/TS files under `target`; None when there are none."""
    if not js_files_under(ws, target):
        return None
    pkg, _ = ws.package_json()
    config = ws.eslint_config(pkg)
    eslint = node_tool("eslint", ws.root)
    if eslint is None:
        return not_installed("eslint", NODE_FIX, "eslint (workspace or bundled)")
    version = tool_version(eslint)
    notes: list[str] = []
    config_args: list[str] = []
    if config is not None and config not in _FLAT_CONFIGS and major_version(version) >= 10:
        notes.append(f"{config} is an eslintrc config, which eslint {version} no longer reads; used the default")
        config = None
    if config is None:
        default = default_eslint_config()
        if default is None:
            return not_installed("eslint", NODE_FIX, "no eslint config in the workspace, and the bundled default")
        config, config_args = f"default ({default})", ["--config", str(default)]
    timeout = profile.timeout("lint")
    with tempfile.TemporaryDirectory(prefix="paradise-eslint-") as tmpdir:
        out = Path(tmpdir) / "eslint.json"
        argv = [eslint, *config_args, "-f", "json", "-o", str(out), "--no-warn-ignored", target]
        run = await ToolRun(profile, timeout, progress).run(argv, "eslint", ws.root, node_env())
        problem = run.problem(timeout)
        text = read_bounded_file(out)
    if problem or run.returncode not in (0, 1) or not text:
        error = run.failure(timeout)
        return {"linter": "eslint", "status": "error", "config": config, "duration_s": run.duration_s, "error": error}
    return {
        "linter": "eslint",
        "status": "ok",
        "config": config,
        "version": version,
        "duration_s": run.duration_s,
        "notes": notes,
        "findings": parse_eslint_report(json.loads(text), ws),
    }


async def run_prettier(
    ws: Workspace, profile: Profile, target: str, progress: Progress | None
) -> dict[str, Any] | None:
    """`prettier --list-different` over the JS/TS files under `target`; None when there are none."""
    files = js_files_under(ws, target)
    if not files:
        return None
    prettier = node_tool("prettier", ws.root)
    if prettier is None:
        return not_installed("prettier", NODE_FIX, "prettier (workspace or bundled)")
    pattern = (
        target if target.endswith(JS_SUFFIXES) else (_PRETTIER_GLOB if target == "." else f"{target}/{_PRETTIER_GLOB}")
    )
    tool = ToolRun(profile, profile.timeout("lint"), progress)
    argv = [prettier, "--list-different", "--no-error-on-unmatched-pattern", pattern]
    run = await tool.run(argv, "prettier", ws.root, node_env())
    if run.problem(tool.timeout) or run.returncode not in (0, 1):
        error = run.failure(tool.timeout)
        return {"linter": "prettier", "status": "error", "duration_s": run.duration_s, "error": error}
    unformatted = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    findings = []
    for index, rel in enumerate(unformatted):
        line = 1
        if index < _PRETTIER_DETAIL_FILES:
            formatted = await tool.run([prettier, rel], None, ws.root, node_env())
            if formatted.returncode == 0:
                original = (ws.root / rel).read_text(encoding="utf-8", errors="replace")
                line = first_difference(original, formatted.stdout)
        findings.append(
            {
                "tool": "prettier",
                "file": rel,
                "line": line,
                "column": None,
                "end_line": None,
                "rule": "prettier",
                "message": "not formatted as prettier would (run prettier --write)",
                "severity": "warning",
                "fixable": True,
                "url": None,
            }
        )
    return {
        "linter": "prettier",
        "status": "ok",
        "version": tool_version(prettier),
        "duration_s": run.duration_s,
        "files_checked": len(files),
        "findings": findings,
    }
