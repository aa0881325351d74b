"""`tsc --noEmit` as a lint check wherever the workspace has a tsconfig.json (the root and each package):
type errors are findings with file, line and the TS code as the rule.  The workspace's own typescript
wins over the bundled one; neither installed is said (with the fix), never passed over in silence."""

from __future__ import annotations

import re
from typing import Any

from ..core.js_packages import find_packages, node_env, node_tool, tool_version
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace

_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+),(?P<col>\d+)\): (?P<sev>error|warning) (?P<code>TS\d+): (?P<msg>.*)$"
)


def tsconfig_dirs(ws: Workspace) -> list[str]:
    """Workspace-relative directories ("" for the root) holding a tsconfig.json, root first."""
    dirs = [""] if (ws.root / "tsconfig.json").is_file() else []
    dirs += [p.rel for p in find_packages(ws) if p.rel and (p.path / "tsconfig.json").is_file()]
    return dirs


def parse_tsc_output(text: str, prefix: str) -> list[dict[str, Any]]:
    findings = []
    for line in text.splitlines():
        match = _DIAGNOSTIC.match(line.strip())
        if not match:
            continue
        findings.append(
            {
                "tool": "tsc",
                "file": f"{prefix}{match.group('file')}",
                "line": int(match.group("line")),
                "column": int(match.group("col")),
                "end_line": None,
                "rule": match.group("code"),
                "message": match.group("msg"),
                "severity": match.group("sev"),
                "fixable": False,
                "url": None,
            }
        )
    return findings


async def run_tsc(ws: Workspace, profile: Profile, target: str, progress: Progress | None) -> dict[str, Any] | None:
    """`tsc --noEmit -p <dir>` for every tsconfig.json under `target`; None when there is none."""
    rel_target = "" if target == "." else target.removeprefix("./").rstrip("/")
    dirs = [d for d in tsconfig_dirs(ws) if not rel_target or d == rel_target or d.startswith(rel_target + "/")]
    if not dirs:
        return None
    tsc = node_tool("tsc", ws.root)
    if tsc is None:
        fix = "add typescript to the project's devDependencies, or install the bundled toolchain"
        error = {"code": "tool_missing", "message": "tsc (typescript) is not installed", "fix": fix}
        return {"linter": "tsc", "status": "error", "error": error}
    tool = ToolRun(profile, profile.timeout("lint"), progress)
    findings: list[dict[str, Any]] = []
    projects = []
    for rel in dirs:
        directory = ws.root / rel if rel else ws.root
        run = await tool.run(
            [tsc, "--noEmit", "-p", "tsconfig.json", "--pretty", "false"], "tsc", directory, node_env()
        )
        found = parse_tsc_output(run.stdout, f"{rel}/" if rel else "")
        if run.problem(tool.timeout) or (run.returncode not in (0, 1, 2) or (run.returncode and not found)):
            error = run.failure(tool.timeout)
            return {"linter": "tsc", "status": "error", "projects": projects, "error": error}
        projects.append({"tsconfig": f"{rel}/tsconfig.json" if rel else "tsconfig.json", "errors": len(found)})
        findings += found
    return {"linter": "tsc", "status": "ok", "version": tool_version(tsc), "projects": projects, "findings": findings}
