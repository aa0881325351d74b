"""Change impact for JavaScript/TypeScript: which test files (as each runner lists them) reach a
changed file through the import graph, and which package/runner pairs must run their full suite
because a change cannot be mapped (configuration, lockfiles, data files nothing imports, unknown
extensions, computed imports).  Such a change never ends in "no tests"."""

from __future__ import annotations

import asyncio
import posixpath
import re
from typing import Any

from ..core.js_packages import JS_SUFFIXES, JsPackage, find_packages
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.workspace import Workspace
from ..testing.js_runners import list_test_files, run_js_runner
from ..testing.js_select import NameFilter
from ..testing.js_tests import innermost_runner_package, runner_packages, section_key
from .gitdiff import FileChange
from .js_graph import JsImportGraph, JsResolver, describe_chain, load_aliases

_LOCKFILES = frozenset({"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb"})
_CONFIG = re.compile(
    r"^(package\.json|[tj]sconfig(\..+)?\.json|(jest|vitest|vite|babel|playwright)\.config\.[a-z]+|"
    r"\.babelrc(\.[a-z]+)?|\.swcrc|\.npmrc|\.nvmrc|\.node-version|\.env(\..+)?)$"
)
# Files no test reads: documentation and repository metadata.
_DOCS = (".md", ".rst", ".adoc", ".txt")
_META = frozenset({"LICENSE", ".gitignore", ".gitattributes", ".editorconfig", ".prettierrc", ".prettierignore"})
_MAX_FILES = 20000


def _affected(packages: list[JsPackage], path: str) -> list[JsPackage]:
    """Runner packages a configuration file at `path` governs: the innermost one holding it, and
    every package below its directory (a root lockfile or tsconfig governs hoisted packages too)."""
    directory = posixpath.dirname(path)
    owner = innermost_runner_package(packages, path)
    below = [p for p in runner_packages(packages) if not directory or p.rel.startswith(directory + "/")]
    unique = {p.label: p for p in [*([owner] if owner else []), *below]}
    return list(unique.values())


def classify(path: str, graph_nodes: set[str], imported: set[str]) -> str:
    """ "module" (the graph maps it), "config" (can change any test of its packages), "ignored"
    (documentation), "python" (the Python side handles it) or "unmapped"."""
    name = path.rsplit("/", 1)[-1]
    if path.endswith(".py"):
        return "python"
    if name in _LOCKFILES or _CONFIG.match(name):
        return "config"
    if path in graph_nodes or path in imported:
        return "module"
    if name in _META or name.endswith(_DOCS) or path.startswith("docs/"):
        return "ignored"
    return "unmapped"


def _read(ws: Workspace, rel: str) -> str | None:
    try:
        return (ws.root / rel).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def build_graph(ws: Workspace, packages: list[JsPackage], deleted: list[str]) -> JsImportGraph:
    files = set(ws.files(("",), limit=_MAX_FILES)) | set(deleted)
    sources: dict[str, str | None] = {p: _read(ws, p) for p in sorted(files) if p.endswith(JS_SUFFIXES)}
    for rel in deleted:
        sources[rel] = None
    configs = [p for p in files if p.rsplit("/", 1)[-1] in ("tsconfig.json", "jsconfig.json")]
    aliases = [load_aliases(c, lambda rel: _read(ws, rel)) for c in configs]
    return JsImportGraph(sources, JsResolver(files, packages, aliases))


async def analyze_js_changes(ws: Workspace, changes: dict[str, FileChange]) -> dict[str, Any]:
    """The JS/TS side of analyze_changes.  `owned` lists the changed files this side accounts for
    (the Python side leaves them alone)."""
    packages = find_packages(ws)
    with_runners = runner_packages(packages)
    js_changed = [p for p in changes if p.endswith(JS_SUFFIXES)]
    if not with_runners and not js_changed:
        return {"packages": [], "impacted_tests": [], "full_suite": [], "untested_changes": [], "owned": []}
    deleted = [p for p, c in changes.items() if c.status == "deleted" and p.endswith(JS_SUFFIXES)]
    graph = await asyncio.to_thread(build_graph, ws, packages, deleted)
    tests: dict[str, tuple[JsPackage, str]] = {}
    listing: list[dict[str, Any]] = []
    for pkg in with_runners:
        for runner in pkg.runners:
            found, source = await list_test_files(ws, pkg, runner)
            found = {t for t in found if innermost_runner_package(packages, t) is pkg}
            listing.append({"package": pkg.label, "runner": runner, "test_files": len(found), "source": source})
            for test in found:
                tests.setdefault(test, (pkg, runner))
    imported = {t for targets in graph.edges.values() for t in targets}
    full: dict[str, dict[str, Any]] = {}

    def need_full(pkg: JsPackage, reason: str) -> None:
        for runner in pkg.runners:
            entry = full.setdefault(section_key(pkg, runner), {"package": pkg.label, "runner": runner, "reasons": []})
            entry["reasons"].append(reason)

    mapped: set[str] = set()
    owned: list[str] = []
    for path in sorted(changes):
        kind = classify(path, set(graph.edges), imported)
        owner = innermost_runner_package(packages, path)
        if owner is not None and owner.rel and kind != "python":
            owned.append(path)  # inside a JS package: this side decides
        if kind == "module":
            owned.append(path)
            mapped.add(path)
            for dyn in graph.dynamic.get(path, []) if owner else []:
                need_full(
                    owner,
                    f"{path} imports a computed name ({dyn['call']} at line {dyn['line']}): the graph cannot "
                    "tell what it loads",
                )
        elif kind == "config":
            owned.append(path)
            for pkg in _affected(packages, path):
                need_full(pkg, f"{path} changed: configuration or dependencies can affect every test of {pkg.label}")
        elif kind == "unmapped" and owner is not None:
            need_full(
                owner,
                f"{path} is not a module that any import reaches (data file or unknown type): the graph cannot "
                f"tell which tests of {owner.label} read it",
            )
    impacted = graph.impacted(mapped, set(tests))
    impacted_tests = [
        {
            "path": test,
            "runner": tests[test][1],
            "package": tests[test][0].label,
            "reason": describe_chain(chain, mapped),
            "chain": chain,
        }
        for test, chain in impacted.items()
        if section_key(*tests[test]) not in full
    ]
    reached = {p for chain in impacted.values() for p in chain}
    untested = sorted(p for p in mapped if p not in reached and p not in tests and changes[p].status != "deleted")
    return {
        "packages": listing,
        "import_graph": graph.summary(),
        "impacted_tests": impacted_tests,
        "full_suite": [
            {"key": key, "package": e["package"], "runner": e["runner"], "reasons": e["reasons"]}
            for key, e in sorted(full.items())
        ],
        "untested_changes": untested,
        "owned": sorted(set(owned)),
        "_graph": graph,  # for Serena's narrowing (ts_serena.py)
        "_tests": set(tests),
        "_mapped": sorted(mapped),
    }


def full_plan_for_all(ws: Workspace, reason: str) -> list[dict[str, Any]]:
    """Every package/runner pair in full mode (no git: nothing can be narrowed)."""
    return [
        {"key": section_key(p, r), "package": p.label, "runner": r, "mode": "full", "tests": [], "reason": reason}
        for p in runner_packages(find_packages(ws))
        for r in p.runners
    ]


def js_plan(js: dict[str, Any]) -> list[dict[str, Any]]:
    """What run_impacted_tests runs per package and runner: the full suite (with why) or the tests."""
    plan = [
        {
            **{k: e[k] for k in ("key", "package", "runner")},
            "mode": "full",
            "tests": [],
            "reason": "; ".join(e["reasons"]),
        }
        for e in js["full_suite"]
    ]
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for test in js["impacted_tests"]:
        grouped.setdefault((test["package"], test["runner"]), []).append(test)
    for (package, runner), tests in sorted(grouped.items()):
        key = runner if package == "." else f"{runner}:{package}"
        entry = {"key": key, "package": package, "runner": runner, "mode": "impacted"}
        entry |= {"tests": [t["path"] for t in tests], "reason": f"{len(tests)} test file(s) import the changes"}
        if all(t.get("scope") == "functions" for t in tests):  # Serena named every test (ts_serena.py)
            names = [i.split("::", 1)[1] for t in tests for i in t["tests"]]
            entry |= {"names": names, "reason": f"{len(names)} test(s) reach the changed symbols (Serena)"}
        plan.append(entry)
    return plan


async def run_js_plan(
    ws: Workspace, profile: Profile, plan: list[dict[str, Any]], *, coverage: bool, progress: Progress | None
) -> dict[str, dict[str, Any]]:
    """Run each planned package/runner: its full suite, or exactly the selected test files."""
    packages = {p.label: p for p in find_packages(ws)}
    sections: dict[str, dict[str, Any]] = {}
    for entry in plan:
        pkg = packages.get(entry["package"])
        if pkg is None:
            continue
        files = None
        if entry["mode"] == "impacted":
            files = [t[len(pkg.prefix()) :] for t in entry["tests"]]
        names = NameFilter(names=entry.get("names") or [])
        sections[entry["key"]] = await run_js_runner(
            ws, pkg, entry["runner"], profile, files=files, name_filter=names, coverage=coverage, progress=progress
        )
    return sections
