"""Serena-aware impact: from the changed lines to the test functions that reach them, symbol by symbol.

When the client also runs Serena (the bridge says where: serena_peer.py), each changed non-test Python file
is mapped to the functions and methods its changed lines fall in (Serena's ``find_symbol`` with body
locations), and their references are followed (``find_referencing_symbols``) from caller to caller until
test functions in test files are reached. The file is then narrowed to those test functions (pytest node
ids), with the chain of symbols that links each one to the change.

Never narrower than the evidence: a file keeps its import-graph (file-level) selection, with the reason, when
a changed line is module-level or class-level code (it runs at import), a definition was removed, Serena
cannot be asked or does not answer, a reference comes from module-level code other than an import, from a
package's ``__init__.py`` or an import ``as`` another name (re-exports and aliases: uses under that name are
not reported as references), from a conftest.py (fixtures reach tests no reference shows), or from deeper
than ``MAX_DEPTH`` callers, or no test function is reached at all. A reference from a helper or fixture in a
test file selects that whole test file. Calls the language server cannot resolve (duck typing, ``getattr``)
are not seen: that is the method's limit.
"""

from __future__ import annotations

import ast
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..core.workspace import Workspace, is_test_file
from .gitdiff import FileChange
from .importgraph import ImportGraph
from .serena_peer import PeerUnavailable, SerenaPeer, current_serena

MAX_FILES = 20  # changed files asked about; the rest keep the import graph's answer
MAX_DEPTH = 4  # callers followed from a changed symbol before giving up on narrowing it
MAX_QUERIES = 120
BUDGET_S = 120.0  # the whole Serena part; beyond it, the import graph
MAX_CHAINS = 30  # chains shown in a reply (the count says how many there are)
CALLABLE = frozenset({"Function", "Method"})
_MARKED = re.compile(r"^\s*>\s*(\d+):", re.M)  # the referencing line in Serena's snippet (0-based)


@dataclass
class FileResult:
    nodes: dict[str, list[str]] = field(default_factory=dict)  # test node id -> chain of symbols
    whole_files: dict[str, str] = field(default_factory=dict)  # test file -> why all of it
    fallback: str | None = None  # why this file keeps the file-level selection
    symbols: list[str] = field(default_factory=list)  # the changed functions and methods, qualified


@dataclass(frozen=True)
class Symbol:
    path: str
    name_path: str  # Serena's: "Class/method"


def callables_in(entries: list[dict[str, Any]], prefix: str = "") -> list[tuple[str, str, int, int]]:
    """(name path, kind, first, last line, 0-based) of every function and method in a find_symbol tree;
    the body of a function is its own (a nested function belongs to the function that defines it)."""
    found = []
    for entry in entries:
        name = entry.get("name_path") or f"{prefix}{entry.get('name', '')}"
        kind = entry.get("kind", "")
        where = entry.get("body_location") or {}
        if kind in CALLABLE and "start_line" in where:
            found.append((name, kind, int(where["start_line"]), int(where["end_line"])))
        elif kind == "Class" or not kind:
            for child_kind, children in (entry.get("children") or {}).items():
                if child_kind in CALLABLE | {"Class"}:
                    typed = [{**c, "kind": child_kind} for c in children]
                    found += callables_in(typed, f"{name}/")
    return found


def pytest_node_id(path: str, name_path: str) -> str | None:
    """The pytest node id of the test function a referencing symbol is (or lies in), else None."""
    parts = name_path.split("/")
    for i, part in enumerate(parts):
        if part.startswith("test") and all(p.startswith("Test") for p in parts[:i]):
            return "::".join([path, *parts[: i + 1]])
        if not part.startswith("Test"):
            return None
    return None


class Walk:
    """One narrowing run against one Serena session."""

    def __init__(self, ws: Workspace, graph: ImportGraph, serena: SerenaPeer) -> None:
        self.ws, self.graph, self.serena = ws, graph, serena
        self.started = time.monotonic()
        self._refs: dict[Symbol, dict[str, Any]] = {}
        self._imports: dict[str, dict[int, list[ast.alias]]] = {}

    def qualified(self, symbol: Symbol) -> str:
        module = self.graph.module_name(symbol.path) if symbol.path in self.graph.nodes else symbol.path
        return f"{module}.{symbol.name_path.replace('/', '.')}"

    def _is_test(self, path: str) -> bool:
        node = self.graph.nodes.get(path)
        return node.is_test if node else is_test_file(path)

    def _budget_left(self) -> None:
        if time.monotonic() - self.started > BUDGET_S or self.serena.calls >= MAX_QUERIES:
            raise PeerUnavailable(f"the Serena budget ({BUDGET_S:.0f}s, {MAX_QUERIES} queries) is spent")

    async def changed_symbols(self, path: str, lines: set[int]) -> list[Symbol]:
        """The functions and methods the changed (1-based) lines fall in; raises ValueError for a line
        outside every one of them (module- or class-level code)."""
        self._budget_left()
        tree = await self.serena.call_json(
            "find_symbol",
            {"name_path_pattern": "/", "substring_matching": True, "relative_path": path, "depth": 2,
             "max_answer_chars": 200_000},
        )
        units = callables_in(tree if isinstance(tree, list) else [])
        touched: dict[str, Symbol] = {}
        for line in sorted(lines):
            around = [u for u in units if u[2] <= line - 1 <= u[3]]
            if not around:
                raise ValueError(f"line {line} is module- or class-level code (it runs at import)")
            outer = min(around, key=lambda u: u[0].count("/"))  # the callable others can reach by name
            touched.setdefault(outer[0], Symbol(path, outer[0]))
        return list(touched.values())

    async def references(self, symbol: Symbol) -> dict[str, Any]:
        if symbol not in self._refs:
            self._budget_left()
            answer = await self.serena.call_json(
                "find_referencing_symbols",
                {"name_path": symbol.name_path, "relative_path": symbol.path, "max_answer_chars": 200_000},
            )
            self._refs[symbol] = answer if isinstance(answer, dict) else {}
        return self._refs[symbol]

    def _import_at(self, path: str, snippet: str, name: str) -> str | None:
        """For a module-level reference: "plain" when its line is (part of) an import of ``name``, "aliased"
        when that import binds it under another name (``as``), None when it is no import."""
        if path not in self._imports:
            lines: dict[int, list[ast.alias]] = {}
            try:
                tree = ast.parse((self.ws.root / path).read_text(encoding="utf-8", errors="replace"))
            except (OSError, SyntaxError, ValueError):
                tree = ast.Module(body=[], type_ignores=[])
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                        lines[line] = node.names
            self._imports[path] = lines
        marked = _MARKED.search(snippet or "")
        names = self._imports[path].get(int(marked.group(1)) + 1) if marked else None
        if names is None:
            return None
        aliased = any(a.asname and a.asname != a.name and a.name.rsplit(".", 1)[-1] == name for a in names)
        return "aliased" if aliased else "plain"

    async def narrow(self, path: str, lines: set[int]) -> FileResult:
        result = FileResult()
        try:
            start = await self.changed_symbols(path, lines)
        except ValueError as exc:
            result.fallback = str(exc)
            return result
        result.symbols = [self.qualified(s) for s in start]
        queue = deque((s, [self.qualified(s)]) for s in start)
        seen = set(start)
        while queue and result.fallback is None:
            symbol, chain = queue.popleft()
            for ref_path, by_kind in sorted((await self.references(symbol)).items()):
                for kind, entries in sorted(by_kind.items()):
                    for entry in entries:
                        follow = self._classify(result, ref_path, kind, entry, chain, len(chain))
                        if follow is not None and follow not in seen:
                            seen.add(follow)
                            queue.append((follow, [*chain, self.qualified(follow)]))
                        if result.fallback:
                            return result
        if not result.nodes and not result.whole_files:
            names = ", ".join(self.qualified(s) for s in start)
            result.fallback = f"Serena finds no test function that reaches {names}"
        return result

    def _classify(
        self, result: FileResult, path: str, kind: str, entry: dict[str, Any], chain: list[str], depth: int
    ) -> Symbol | None:
        """Record what one reference means; return the symbol to follow further, if any."""
        name_path = entry.get("name_path", "")
        name = path.rsplit("/", 1)[-1]
        if kind == "File":
            imported = self._import_at(path, entry.get("content_around_reference", ""), chain[-1].rsplit(".", 1)[-1])
            if imported == "plain" and name != "__init__.py":
                return None  # the import itself; the uses of the imported name are references of their own
            if self._is_test(path):
                result.whole_files.setdefault(path, f"module-level code of {path} uses {chain[-1]}")
            elif imported:
                # A package re-export or an ``as`` alias: uses under that name (``package.name``, the alias)
                # are no references the language server reports, so what reaches the symbol is unknown.
                result.fallback = f"{path} imports {chain[-1]} under another name: its uses are not traced"
            else:
                result.fallback = f"module-level code of {path} uses {chain[-1]} (where it goes is not traced)"
            return None
        if name == "conftest.py":
            result.fallback = f"{path} ({name_path}) uses {chain[-1]}: fixtures reach tests no reference shows"
            return None
        if self._is_test(path):
            node = pytest_node_id(path, name_path)
            if node:
                result.nodes.setdefault(node, [*chain, node])
            else:
                result.whole_files.setdefault(path, f"{name_path} (a helper or fixture) uses {chain[-1]}")
            return None
        if depth > MAX_DEPTH:
            result.fallback = f"{chain[0]} is reached through more than {MAX_DEPTH} callers"
            return None
        return Symbol(path, name_path)


async def serena_narrowing(
    ws: Workspace, changes: dict[str, FileChange], graph: ImportGraph, functions: list[dict[str, Any]]
) -> dict[str, Any]:
    """{"used", "reason", "symbols", "chains", "narrowed": {file: FileResult}, "fallbacks": [...]}."""
    peer = current_serena()
    if peer is None:
        return {"used": False, "reason": "no Serena instance of this client is running: import graph only"}
    removed = {f["path"] for f in functions if f.get("change") == "removed"}
    candidates = [
        c for p, c in sorted(changes.items())
        if p.endswith(".py") and p in graph.nodes and not graph.nodes[p].is_test
        and p.rsplit("/", 1)[-1] != "conftest.py" and c.status != "deleted"
    ]
    fallbacks = [{"path": c.path, "reason": "a definition was removed"} for c in candidates if c.path in removed]
    fallbacks += [{"path": c.path, "reason": f"more than {MAX_FILES} changed files"} for c in candidates[MAX_FILES:]]
    asked = [c for c in candidates[:MAX_FILES] if c.path not in removed]
    narrowed: dict[str, FileResult] = {}
    started = time.monotonic()
    try:
        async with SerenaPeer(*peer) as serena:
            walk = Walk(ws, graph, serena)
            for change in asked:
                result = await walk.narrow(change.path, change.new_lines)
                if result.fallback:
                    fallbacks.append({"path": change.path, "reason": result.fallback})
                else:
                    narrowed[change.path] = result
            calls = serena.calls
    except PeerUnavailable as exc:
        return {"used": False, "reason": f"{exc}: import graph only", "fallbacks": fallbacks}
    return _report(narrowed, fallbacks, calls, time.monotonic() - started)


def _report(narrowed: dict[str, FileResult], fallbacks: list[dict[str, str]], calls: int, took: float) -> dict:
    chains = sorted({tuple(c) for r in narrowed.values() for c in r.nodes.values()})
    symbols = sorted({name for r in narrowed.values() for name in r.symbols})
    if narrowed:
        reason = (
            f"Serena narrowed {len(narrowed)} changed file(s) to the test functions that reach the changed "
            f"symbols through references ({calls} queries, {took:.1f}s)"
        )
    else:
        reason = "Serena could not narrow any changed file: import graph only"
    return {
        "used": bool(narrowed),
        "reason": reason,
        "symbols": symbols,
        "chains": [list(c) for c in chains[:MAX_CHAINS]],
        "chains_total": len(chains),
        "narrowed_files": sorted(narrowed),
        "fallbacks": fallbacks[:50],
        "_narrowed": narrowed,
    }


def narrow_impacted(
    entries: list[dict[str, Any]], serena: dict[str, Any], graph: ImportGraph, changed_py: set[str]
) -> list[dict[str, Any]]:
    """The import graph's impacted test files, with what Serena showed: a test file reached only through
    narrowed changes lists its test functions (``scope`` "functions") or is dropped when none reach them;
    one reached through any other change stays whole (``scope`` "file") and still lists them."""
    narrowed: dict[str, FileResult] = serena.get("_narrowed") or {}
    if not narrowed:
        return entries
    rest = graph.impacted_tests(changed_py - set(narrowed))
    functions: dict[str, dict[str, list[str]]] = {}
    whole: dict[str, str] = {}
    for result in narrowed.values():
        for node, chain in result.nodes.items():
            functions.setdefault(node.split("::", 1)[0], {}).setdefault(node, chain)
        whole.update(result.whole_files)
    listed = {e["path"] for e in entries}
    extra = [
        {"path": p, "runner": "pytest", "chain": [p], "reason": "reached through references (Serena)"}
        for p in sorted((set(functions) | set(whole)) - listed)
    ]
    out: list[dict[str, Any]] = []
    for entry in [*entries, *extra]:
        path = entry["path"]
        nodes = functions.get(path, {})
        if entry.get("runner") != "pytest":
            out.append(entry)
        elif path in whole:  # a helper or module-level code of the test file: all of it, whatever the chain
            out.append({**entry, "scope": "file", "reason": whole[path], "functions": sorted(nodes), "chain": [path]})
        elif path in rest:  # also reached through a change Serena did not narrow
            out.append({**entry, "scope": "file", "functions": sorted(nodes)} if nodes else entry)
        elif nodes:
            shown = "; ".join(" -> ".join(c) for c in list(nodes.values())[:3])
            more = f" (+{len(nodes) - 3} more)" if len(nodes) > 3 else ""
            out.append({**entry, "scope": "functions", "functions": sorted(nodes),
                        "reason": f"{len(nodes)} test function(s) reach the changed symbols (Serena): {shown}{more}"})
        # else: reached only through narrowed changes, by no test function: not impacted
    return out
