"""Which pytest tests a change needs, as precisely as the evidence allows and never silently empty.

* A changed function body whose file is unchanged since a full coverage run recorded per-test
  contexts (contexts.py): the test functions that executed that function's lines.
* A changed function or method whose references the client's Serena followed to test functions
  (serena_impact.py): those test functions.
* Any other Python change (module-level code, signatures, decorators, new functions, a file measured
  in another version): every test file that imports the module, directly or transitively.
* A changed non-Python file (a fixture .txt, .json, .csv, an unknown extension): the tests that name
  it (by file name), or that import a module naming it; when no Python file names it, the full
  suite, with the reason.  Documentation and images no Python file names are left out, and said so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..testing.contexts import ContextMap
from ..testing.pytestconfig import full_run_config
from ..testing.testhistory import load_timings
from .gitdiff import Definition, FileChange, Git, definitions
from .importgraph import ImportGraph

# Files tests do not read unless a Python file names them (then they are treated like data).
INERT_SUFFIXES = (".md", ".rst", ".adoc", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".lock")
INERT_NAMES = re.compile(r"^(README|CHANGELOG|CHANGES|HISTORY|LICENSE|AUTHORS|CONTRIBUTING|NOTICE)([.-].*)?$", re.I)
INERT_EXACT = frozenset({".gitignore", ".gitattributes", ".editorconfig", ".dockerignore", "Makefile"})
# Front-end files belong to the JavaScript side of the impact analysis (js_impact.py).
JS_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".css", ".scss", ".vue", ".svelte")
JS_NAMES = frozenset({"package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml"})
SERENA_MARK = "(Serena)"
MAX_NODE_IDS = 1500
"""More selected test functions than this run as their files (a command line has limits)."""


def _is_python_side_data(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not (path.endswith(".py") or name.endswith(JS_SUFFIXES) or name in JS_NAMES)


def _inert(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        path.startswith("docs/")
        or name in INERT_EXACT
        or bool(INERT_NAMES.match(name))
        or name.endswith(INERT_SUFFIXES)
    )


def map_data_files(
    changes: dict[str, FileChange], graph: ImportGraph, sources: dict[str, str | None], skip: set[str]
) -> dict[str, Any]:
    """For each changed non-Python file (not in `skip`: configuration and conftest files, decided
    elsewhere): the tests that read it as far as names show, else a full-suite reason."""
    files: list[dict[str, Any]] = []
    impacted: dict[str, dict[str, Any]] = {}
    reasons: list[str] = []
    for path in sorted(changes):
        if path in skip or not _is_python_side_data(path):
            continue
        name = path.rsplit("/", 1)[-1]
        naming = sorted(p for p, text in sources.items() if text and (path in text or name in text))
        tests: dict[str, list[str]] = {}
        for py in naming:
            if graph.nodes.get(py) and graph.nodes[py].is_test:
                tests.setdefault(py, [py])
            for test, chain in graph.impacted_tests({py}).items():
                tests.setdefault(test, chain)
        if tests:
            files.append({"path": path, "decision": "tests that name it", "named_by": naming[:20], "tests": len(tests)})
            for test, chain in tests.items():
                via = f" via {' -> '.join(graph.module_name(p) for p in chain[1:])}" if len(chain) > 1 else ""
                impacted.setdefault(
                    test,
                    {"path": test, "runner": "pytest", "reason": f"reads {path} (names {name!r}){via}", "chain": chain},
                )
        elif naming:
            files.append({"path": path, "decision": "named only by code no test imports", "named_by": naming[:20]})
        elif _inert(path):
            files.append({"path": path, "decision": "ignored: documentation or image that no Python file names"})
        else:
            reason = (
                f"{path} changed and no Python file names it (a data file or unknown kind of file): "
                "the import graph cannot tell which tests read it"
            )
            files.append({"path": path, "decision": "full suite", "reason": reason})
            reasons.append(reason)
    return {"files": files, "impacted_tests": list(impacted.values()), "full_suite_reasons": reasons}


def _innermost_function(defs: list[Definition], line: int) -> Definition | None:
    """The function whose body holds `line`; None for module-level, class-body, decorator and
    signature lines (they run at import time, so every importer can see their effect)."""
    around = [d for d in defs if d.start <= line <= d.end]
    if not around:
        return None
    inner = min(around, key=lambda d: d.end - d.start)
    if inner.kind != "function" or line < inner.body_start:
        return None
    return inner


def changed_function_lines(change: FileChange, new_text: str, old_text: str) -> dict[str, set[int]] | None:
    """{qualified name: lines of its base-version body} for a change confined to existing function
    bodies; None when any touched line is outside one (then the file, not functions, is the unit)."""
    try:
        new_defs, old_defs = definitions(new_text), definitions(old_text)
    except SyntaxError:
        return None
    names: set[str] = set()
    for line in change.new_lines:
        found = _innermost_function(new_defs, line)
        if found is None:
            return None
        names.add(found.qualname)
    for line in change.old_lines:
        found = _innermost_function(old_defs, line)
        if found is None:
            return None
        names.add(found.qualname)
    old_by_name = {d.qualname: d for d in old_defs}
    if not names or any(n not in old_by_name for n in names):
        return None  # a new function: nothing recorded ran it
    return {n: set(range(old_by_name[n].body_start, old_by_name[n].end + 1)) for n in names}


def _node_exists(ws_root: Any, nodeid: str) -> bool:
    file, _, rest = nodeid.partition("::")
    path = ws_root / file
    if not rest or not path.is_file():
        return False
    function = rest.split("::")[-1].split("[", 1)[0]
    try:
        return (
            re.search(rf"def\s+{re.escape(function)}\b", path.read_text(encoding="utf-8", errors="replace")) is not None
        )
    except OSError:
        return False


@dataclass
class Selection:
    files: dict[str, str] = field(default_factory=dict)  # test file -> reason
    nodes: dict[str, str] = field(default_factory=dict)  # test node id -> reason
    notes: list[str] = field(default_factory=list)
    by_function: int = 0  # changed files narrowed to test functions
    by_file: int = 0
    by_serena: int = 0  # of those, narrowed through Serena's references

    @property
    def granularity(self) -> str:
        if self.nodes and not self.files:
            return "test"
        return "mixed" if self.nodes else "file"

    def targets(self) -> list[str]:
        nodes = [n for n in sorted(self.nodes) if n.split("::", 1)[0] not in self.files]
        if len(nodes) > MAX_NODE_IDS:
            self.notes.append(f"{len(nodes)} test functions selected: running their files instead")
            for n in nodes:
                self.files.setdefault(n.split("::", 1)[0], self.nodes[n])
            nodes = []
        return sorted(self.files) + nodes

    def reason(self, total_files: int) -> str:
        alone = [r for n, r in self.nodes.items() if n.split("::", 1)[0] not in self.files]
        parts = [f"{len(self.files)} of {total_files} test files depend on the changes"] if self.files else []
        if reached := sum(1 for r in alone if r.endswith(SERENA_MARK)):
            parts.append(f"{reached} test functions reach the changed symbols through references (Serena)")
        if executed := len(alone) - reached:
            parts.append(f"{executed} test functions executed the changed functions (recorded coverage)")
        if not parts:
            return "the changed functions are executed by no recorded test: " + "; ".join(self.notes[:5])
        return "; ".join(parts)

    def listing(self) -> list[dict[str, str]]:
        shown = [{"path": p, "reason": r} for p, r in sorted(self.files.items())]
        return shown + [
            {"path": n, "reason": r} for n, r in sorted(self.nodes.items()) if n.split("::", 1)[0] not in self.files
        ]


async def choose_targets(ws: Any, analysis: dict[str, Any], file_level: list[dict[str, Any]]) -> Selection:
    """Narrow the analysis' impacted test files to test functions where per-test coverage allows.

    `file_level` are the impacted pytest files the analysis found (import graph, data files)."""
    selection = Selection()
    changes: dict[str, FileChange] = analysis.get("_changes") or {}
    graph: ImportGraph | None = analysis.get("_graph")
    contexts = ContextMap.load(ws)
    narrowed: set[str] = set()  # changed files fully handled by per-test contexts
    if contexts is None:
        selection.notes.append(
            "no per-test coverage recorded yet (a full run_tests with coverage records it): selected whole test files"
        )
    elif graph is not None:
        git = Git(ws)
        base = analysis["base_commit"]
        for path, change in sorted(changes.items()):
            node = graph.nodes.get(path)
            if not path.endswith(".py") or node is None or node.is_test or change.status != "modified":
                continue
            old_text = await git.show(base, path)
            if not contexts.matches(path, old_text):
                selection.notes.append(f"{path}: recorded coverage is of another version; selected by imports")
                continue
            try:
                new_text = (ws.root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            spans = changed_function_lines(change, new_text, old_text or "")
            if spans is None:
                selection.notes.append(f"{path}: module-level or new code changed; selected by imports")
                continue
            narrowed.add(path)
            for function, lines in sorted(spans.items()):
                tests = [t for t in sorted(contexts.tests_for_lines(path, lines)) if _node_exists(ws.root, t)]
                if not tests:
                    selection.notes.append(f"{path}: no recorded test executes {function} (untested change)")
                for test in tests:
                    selection.nodes.setdefault(test, f"executed {function} in {path} (recorded coverage)")
    serena = set(analysis.get("_serena_narrowed") or ()) - narrowed
    narrowed |= serena
    still_file_level = {p for p in changes if p.endswith(".py") and p not in narrowed}
    by_imports = graph.impacted_tests(still_file_level) if graph is not None and still_file_level else {}
    config = full_run_config(ws)
    recorded = {n.split("::", 1)[0] for n in load_timings(ws)}
    for entry in file_level:
        if not config.collects(entry["path"]):
            selection.notes.append(
                f"{entry['path']}: left out, the full run does not collect it (testpaths/norecursedirs)"
            )
            continue
        for node in entry.get("functions") or ():
            selection.nodes.setdefault(node, f"reaches the changed symbols {SERENA_MARK}")
        if entry.get("scope") == "functions":
            continue  # reached only through changes Serena narrowed: its test functions, not the file
        origin = (entry.get("chain") or [entry["path"]])[-1]
        if origin in narrowed and entry["path"] not in by_imports:
            continue  # reached only through functions that per-test coverage (or Serena) narrowed
        if recorded and entry["path"] not in recorded and entry["path"] not in changes:
            selection.notes.append(f"{entry['path']}: left out, the recorded runs never collected a test from it")
            continue
        selection.files.setdefault(entry["path"], entry.get("reason", "selected"))
    selection.by_function = len(narrowed)
    selection.by_file = len(still_file_level)
    selection.by_serena = len(serena)
    return selection


def selection_report(selection: Selection, python: dict[str, Any] | None, timings: dict, runs: list) -> dict:
    """How much of the suite ran and what it saved, from the recorded timings and the last full run."""
    targets = selection.targets()
    suite = len(timings)
    chosen = [n for n in timings if any(n == t or n.startswith((t + "::", t + "/")) for t in targets)]
    full_runs = [r for r in runs if r.get("scope") == "full"]
    last_full = full_runs[-1] if full_runs else None
    duration = (python or {}).get("duration_s")
    report: dict[str, Any] = {
        "granularity": selection.granularity,
        "test_files": len(selection.files),
        "test_functions": len([n for n in selection.nodes if n.split("::", 1)[0] not in selection.files]),
        "changed_files_by_function": selection.by_function,
        "changed_files_by_serena": selection.by_serena,
        "changed_files_by_imports": selection.by_file,
        "suite_tests_recorded": suite or None,
        "selected_tests_recorded": len(chosen) if suite else None,
        "selected_share": round(len(chosen) / suite, 3) if suite else None,
        "duration_s": duration,
        "last_full_run_s": last_full.get("duration_s") if last_full else None,
        "time_saved_s": round(last_full["duration_s"] - duration, 3) if last_full and duration is not None else None,
        "notes": selection.notes,
    }
    counts = (python or {}).get("counts") or {}
    if counts.get("total"):
        # of the tests that ran, the share that failed: how much of the selection was needed to see a failure
        report["failing_share"] = round((counts.get("failed", 0) + counts.get("errors", 0)) / counts["total"], 3)
    return report
