"""analyze_changes and run_impacted_tests: what changed since a base ref, which tests can be affected
(through the static import graph, narrowed to test functions by the client's Serena when it runs:
serena_impact.py), and when the graph cannot decide so the full suite must run."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ..core.errors import QualityError
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.workspace import Workspace
from ..testing.testhistory import load_timings, read_runs
from ..testing.testmerge import combine_sections
from ..testing.tests_tool import run_pytest
from .gitdiff import FileChange, Git, changed_definitions
from .importgraph import ImportGraph
from .js_impact import analyze_js_changes, full_plan_for_all, js_plan, run_js_plan
from .risk import assess as assess_risk
from .selection import choose_targets, map_data_files, selection_report
from .serena_impact import current_serena, narrow_impacted, serena_narrowing
from .ts_functions import changed_ts_functions
from .ts_serena import ts_narrowing

# Files whose change can affect any test: pytest/packaging configuration and dependency lists.
CONFIG_NAMES = frozenset({"pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini", ".coveragerc"})
_REQUIREMENTS = re.compile(r"^requirements.*\.txt$")
# Changed files that Python tests do not read: documentation, images, front-end sources.
_IGNORED_SUFFIXES = (
    ".md",
    ".rst",
    ".adoc",
    ".txt",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".ico",
    ".js",
    ".jsx",
    ".ts",
    ".tsx",
    ".mjs",
    ".cjs",
    ".css",
    ".scss",
    ".lock",
)
_IGNORED_NAMES = frozenset(
    {"LICENSE", "LICENSE.txt", ".gitignore", ".gitattributes", "package-lock.json", "package.json", ".editorconfig"}
)
_MAX_FUNCTION_FILES = 300
_MAX_UNTESTED_CHECKS = 200


def fallback_reasons(changes: dict[str, FileChange], graph: ImportGraph) -> list[str]:
    """Why the import graph cannot decide which tests are affected (empty list: it can)."""
    reasons: list[str] = []
    for path in sorted(changes):
        name = path.rsplit("/", 1)[-1]
        if name == "conftest.py":
            reasons.append(f"{path} changed: its fixtures and hooks can affect any test")
        elif name in CONFIG_NAMES or _REQUIREMENTS.match(name):
            reasons.append(f"{path} changed: configuration or dependencies can affect every test")
        elif path.endswith(".py"):
            node = graph.nodes.get(path)
            for dyn in node.dynamic if node else []:
                target = f" of {dyn['target']!r}" if dyn["target"] else " of a computed name"
                reasons.append(
                    f"{path} imports dynamically ({dyn['call']}{target} at line {dyn['line']}): "
                    "the import graph cannot tell which tests load what it loads"
                )
    # other non-Python files (data, unknown kinds): selection.map_data_files decides
    return reasons


def _is_config(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name == "conftest.py" or name in CONFIG_NAMES or bool(_REQUIREMENTS.match(name))


def _read_sources(ws: Workspace, deleted: list[str]) -> dict[str, str | None]:
    sources = ws.python_sources()
    for rel in deleted:
        sources.setdefault(rel, None)
    return sources


async def _changed_functions(git: Git, ws: Workspace, base: str, changes: list[FileChange]) -> tuple[list, list]:
    functions: list[dict[str, Any]] = []
    notes: list[str] = []
    for change in changes[:_MAX_FUNCTION_FILES]:
        new = None
        if change.status != "deleted":
            try:
                new = (ws.root / change.path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                new = None
        old = await git.show(base, change.path) if change.status in ("modified", "deleted") else None
        try:
            functions += changed_definitions(change, new, old)
        except SyntaxError as exc:
            notes.append(f"{change.path}: cannot map changed lines to functions ({exc.msg} at line {exc.lineno})")
    if len(changes) > _MAX_FUNCTION_FILES:
        notes.append(f"changed functions listed for the first {_MAX_FUNCTION_FILES} of {len(changes)} Python files")
    return functions, notes


async def analyze_changes(
    ws: Workspace,
    profile: Profile,
    *,
    base_ref: str = "HEAD",
    include_edges: bool = True,
    progress: Progress | None = None,
    serena: bool = True,
) -> dict[str, Any]:
    """Changed files and functions against `base_ref`, the import graph and the impacted tests (narrowed
    to test functions through the client's Serena, when `serena` and it runs).

    Raises QualityError when the workspace is not a git repository or the ref is unknown."""
    git = Git(ws, timeout=profile.timeout("changes"))
    await git.require_repo()
    base_commit = await git.resolve(base_ref)
    # Our reports and installed dependencies (node_modules, also when not gitignored) are no change.
    changes = {
        p: c
        for p, c in (await git.changes(base_commit)).items()
        if not p.startswith(".paradise/") and "node_modules" not in p.split("/")
    }
    if progress:
        await progress.step(0, f"{len(changes)} changed files; building the import graph")
    py_changes = [c for c in changes.values() if c.path.endswith(".py")]
    deleted = [c.path for c in py_changes if c.status == "deleted"]
    sources = await asyncio.to_thread(_read_sources, ws, deleted)
    graph = await asyncio.to_thread(ImportGraph.build, sources)
    functions, notes = await _changed_functions(git, ws, base_commit, py_changes)
    ts_functions, ts_notes = await changed_ts_functions(git, ws, base_commit, changes)
    notes += ts_notes
    changed_py = {c.path for c in py_changes if c.path in graph.nodes}
    impacted = graph.impacted_tests(changed_py)
    changed_sources = sorted(p for p in changed_py if not graph.nodes[p].is_test and changes[p].status != "deleted")
    untested = [p for p in changed_sources[:_MAX_UNTESTED_CHECKS] if not graph.impacted_tests({p})]
    js = await analyze_js_changes(ws, changes)
    owned = set(js["owned"])  # changes inside JavaScript packages: the JS side decides about them
    reasons = fallback_reasons({p: c for p, c in changes.items() if p not in owned}, graph)
    js_reasons = [f"{e['runner']} ({e['package']}): {r}" for e in js["full_suite"] for r in e["reasons"]]
    python_side = {p: c for p, c in changes.items() if p not in owned}
    data_files = map_data_files(python_side, graph, sources, skip={p for p in python_side if _is_config(p)})
    reasons += data_files["full_suite_reasons"]
    data_tests = [t for t in data_files["impacted_tests"] if t["path"] not in impacted]
    risk = await assess_risk(ws, git, base_commit, changes, graph, impacted)
    if not serena:
        peer: dict[str, Any] = {"used": False, "reason": "not asked for: import graph only"}
    elif reasons:
        peer = {"used": False, "reason": "the full suite is required (fallback_reasons): nothing to narrow"}
    else:
        if progress and current_serena() is not None and any(p.endswith(".py") for p in python_side):
            await progress.step(0, "asking Serena which test functions reach the changed symbols")
        peer = await serena_narrowing(ws, python_side, graph, functions)
    if serena and js["impacted_tests"]:
        if progress and current_serena() is not None:
            await progress.step(0, "asking Serena which test files reach the changed JS/TS symbols")
        removed = {f["path"] for f in ts_functions if f.get("change") == "removed"}
        peer["javascript"] = await ts_narrowing(js, changes, removed)
    graph_tests = [
        {"path": test, "runner": "pytest", "reason": graph.describe_chain(chain, changed_py), "chain": chain}
        for test, chain in impacted.items()
    ]
    dynamic_elsewhere = [
        {"path": p, **d}
        for p, n in sorted(graph.nodes.items())
        if p not in changed_py
        for d in n.dynamic
        if d["target"] is None
    ]
    summary = graph.summary(edge_limit=2000 if include_edges else 0)
    return {
        "tool": "analyze_changes",
        "status": "ok",
        "base_ref": base_ref,
        "base_commit": base_commit,
        "changed_files": [changes[p].as_dict() for p in sorted(changes)],
        "changed_functions": functions + ts_functions,
        "changed_modules": sorted(graph.module_name(p) for p in changed_py),
        "import_graph": summary,
        "impacted_tests": narrow_impacted(graph_tests, peer, graph, changed_py) + data_tests + js["impacted_tests"],
        "serena": {k: v for k, v in peer.items() if not k.startswith("_")},
        "_serena_narrowed": sorted(peer.get("_narrowed") or ()),
        "data_files": data_files["files"],
        "risk": risk,
        "_changes": changes,
        "_graph": graph,
        "untested_changes": untested + js["untested_changes"],
        "full_suite_required": bool(reasons or js["full_suite"]),
        "fallback_reasons": reasons + js_reasons,
        "javascript": {k: js[k] for k in ("packages", "import_graph", "full_suite") if k in js},
        "_python_fallback_reasons": reasons,
        "_js": js,
        "warnings": notes
        + [
            f"{d['path']}:{d['line']} imports a computed name ({d['call']}); modules it loads are not in the graph"
            for d in dynamic_elsewhere[:50]
        ],
    }


async def run_impacted_tests(
    ws: Workspace, profile: Profile, *, base_ref: str = "HEAD", coverage: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Run only the tests the changes can affect; the full suite when the graph cannot decide."""
    reasons: list[str] = []
    selected: list[dict[str, Any]] = []
    analysis: dict[str, Any] | None = None
    try:
        analysis = await analyze_changes(ws, profile, base_ref=base_ref, include_edges=False, progress=progress)
    except QualityError as exc:
        if exc.code not in ("not_a_git_repository", "no_commits"):
            raise
        reasons.append(f"{exc.message}: cannot tell what changed")
    js_entries: list[dict[str, Any]] = []
    if analysis is not None:
        reasons += analysis["_python_fallback_reasons"]
        selected = [
            t for t in analysis["impacted_tests"] if t["runner"] == "pytest" and (ws.root / t["path"]).is_file()
        ]
        js_entries = js_plan(analysis["_js"])
    elif reasons:
        js_entries = full_plan_for_all(ws, reasons[0])
    changed = analysis is None or bool(analysis["changed_files"])
    total_tests = len(ws.test_files())
    if reasons and not total_tests and (js_entries or (analysis and analysis["_js"]["packages"])):
        reasons = []  # a JavaScript-only workspace: no Python suite to fall back to
    result: dict[str, Any] = {"tool": "run_impacted_tests", "base_ref": base_ref}
    if total_tests:  # Python test files: a JavaScript-only workspace's reply carries no Python figure
        result["total_test_files"] = total_tests
    if analysis is not None:
        result["analysis"] = {
            k: analysis[k]
            for k in ("base_commit", "changed_files", "changed_functions", "untested_changes", "risk", "serena",
                      "warnings")
        }
    if progress:
        await progress.step(1, "running tests")
    sections: dict[str, Any] = {}
    by_runner: list[dict[str, Any]] = []
    if reasons:
        sections["python"] = await run_pytest(ws, profile, coverage=coverage, progress=progress)
        by_runner.append(
            {"runner": "pytest", "package": ".", "mode": "full", "tests": [], "reason": "; ".join(reasons)}
        )
    elif selected and analysis is not None:
        pick = await choose_targets(ws, analysis, selected)
        selected, targets = pick.listing(), pick.targets()
        if targets:
            sections["python"] = await run_pytest(ws, profile, targets=targets, coverage=coverage, progress=progress)
        reason = pick.reason(total_tests)
        by_runner.append({"runner": "pytest", "package": ".", "mode": "impacted", "tests": targets, "reason": reason})
        result["selection"] = selection_report(pick, sections.get("python"), load_timings(ws), read_runs(ws, 50))
    sections.update(await run_js_plan(ws, profile, js_entries, coverage=coverage, progress=progress))
    if len(sections) > 1 and sections.get("python", {}).get("status") == "skipped" and not total_tests:
        sections.pop("python")  # a JavaScript-only workspace: "no Python tests" is no gap
    by_runner += js_entries
    selected_tests = [{"path": t["path"], "reason": t["reason"]} for t in selected]
    selected_tests += [
        {"path": t["path"], "runner": t["runner"], "reason": t["reason"]}
        for t in (analysis["_js"]["impacted_tests"] if analysis else [])
        if any(e["mode"] == "impacted" and t["path"] in e["tests"] for e in js_entries)
    ]
    full = [e for e in by_runner if e["mode"] == "full"]
    result["by_runner"] = by_runner
    result["selected_tests"] = selected_tests
    if not sections:
        untested = (analysis or {}).get("untested_changes") or []
        result.update(
            status="ok",
            mode="impacted" if changed else "none",
            tests=None,
            reason=(
                "no test depends on the changed files"
                + (f" (not reached by any test: {', '.join(untested[:10])})" if untested else "")
                if changed
                else "nothing changed"
            ),
        )
        return result
    tests = combine_sections(sections)
    if full:
        js_full = [f"{e['key']}: {e['reason']}" for e in full if e["runner"] != "pytest"]
        result.update(mode="full", fallback_reasons=reasons + js_full)
    else:
        result["mode"] = "impacted"
    result["reason"] = "; ".join(
        e["reason"] if e["runner"] == "pytest" else f"{e['key']} {e['mode']}: {e['reason']}" for e in by_runner
    )
    result["status"] = tests.get("status", "ok")
    result["tests"] = tests
    result["counts"] = tests.get("counts")
    return result
