"""Serena-aware impact for JavaScript and TypeScript, as serena_impact.py is for Python: when the client's
Serena serves the workspace's JS/TS (typescript-language-server), each changed source file that the import
graph (js_impact.py) maps to test files is mapped to the named symbols its changed lines fall in (functions,
constants, class members), and their references are followed from caller to caller until test files are
reached. The file is then narrowed to the tests that reach a changed symbol: the `describe`/`it` callbacks
a reference lies in give the runner's test names (`scope` "functions"; jest/vitest run them by name), a
reference from a helper, hook or module-level code of a test file selects that whole file (`scope` "file").

Never narrower than the evidence: a file keeps the import graph's selection, with the reason, when a changed
line is module-level or class-level code, a definition was removed, a reference comes from module-level
code of a source file, from an import under another name or a re-export (uses under that name are not
traced), from deeper than MAX_DEPTH callers, when Serena cannot be asked or answers nothing for the file,
or when no test file is reached at all."""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .serena_impact import BUDGET_S, MAX_CHAINS, MAX_DEPTH, MAX_FILES, MAX_QUERIES
from .serena_peer import PeerUnavailable, SerenaPeer, current_serena

NAMED = frozenset({"Function", "Method", "Constructor", "Constant", "Variable", "Property", "Field", "Class"})
_MARKED = re.compile(r"^\s*>\s*(\d+):(.*)$", re.M)
_IMPORT = re.compile(r"^\s*(import|export)\b")
_RENAMED = re.compile(r"\bas\s+[A-Za-z_$]|^\s*export\s*(\*|\{[^}]*\}\s*from)")
_TITLE = re.compile(r"""^(?:\w+\.)*(describe|it|test|suite)(?:\.\w+)*\((['"`])(.*)\2\) callback$""")


@dataclass
class TsResult:
    tests: dict[str, list[str]] = field(default_factory=dict)  # test file -> chain of symbols
    titles: dict[str, set[str]] = field(default_factory=dict)  # test file -> test ids reached
    whole: set[str] = field(default_factory=set)  # test files reached outside a test (helpers, module level)
    fallback: str | None = None
    symbols: list[str] = field(default_factory=list)


def _units(entries: list[dict[str, Any]]) -> list[tuple[str, int, int, bool]]:
    """(name path, first, last line (0-based), is a class) of the top-level named symbols and class members."""
    found = []
    for entry in entries:
        name, kind = entry.get("name_path") or entry.get("name", ""), entry.get("kind", "")
        where = entry.get("body_location") or {}
        if kind not in NAMED or "start_line" not in where or name.endswith(" callback"):
            continue
        found.append((name, int(where["start_line"]), int(where["end_line"]), kind == "Class"))
        for child_kind, children in (entry.get("children") or {}).items() if kind == "Class" else ():
            for child in children:
                span = child.get("body_location") or {}
                if child_kind in NAMED and "start_line" in span:
                    member = "constructor" if child_kind == "Constructor" else child.get("name", "")
                    found.append((f"{name}/{member}", int(span["start_line"]), int(span["end_line"]), False))
    return found


def runner_test_id(path: str, name_path: str) -> str | None:
    """`file::describe title it title` for a reference inside a test's callback, as jest/vitest name it; None
    unless every enclosing callback is a `describe`/`it`/`test` with a literal title and the innermost is a
    test (a hook, `.each` or a template title: the whole file)."""
    found = [_TITLE.match(part) for part in name_path.split("/")]
    if not found or not all(found) or found[-1].group(1) not in ("it", "test"):  # type: ignore[union-attr]
        return None
    titles = [m.group(3) for m in found if m]
    return None if any("${" in title for title in titles) else f"{path}::{' '.join(titles)}"


class TsWalk:
    def __init__(self, serena: SerenaPeer, test_files: set[str]) -> None:
        self.serena, self.test_files, self.started = serena, test_files, time.monotonic()

    async def _ask(self, tool: str, arguments: dict[str, Any]) -> Any:
        if time.monotonic() - self.started > BUDGET_S or self.serena.calls >= MAX_QUERIES:
            raise PeerUnavailable(f"the Serena budget ({BUDGET_S:.0f}s, {MAX_QUERIES} queries) is spent")
        return await self.serena.call_json(tool, {**arguments, "max_answer_chars": 200_000})

    async def changed_symbols(self, path: str, lines: set[int]) -> list[str]:
        tree = await self._ask(
            "find_symbol", {"name_path_pattern": "/", "substring_matching": True, "relative_path": path, "depth": 2}
        )
        units = _units(tree if isinstance(tree, list) else [])
        if not units:
            raise ValueError("Serena finds no symbol in it (is typescript among its languages?)")
        touched: dict[str, None] = {}
        for line in sorted(lines):
            around = [u for u in units if u[1] <= line - 1 <= u[2]]
            members = [u for u in around if not u[3]]
            if not members:
                raise ValueError(f"line {line} is module- or class-level code (it runs at import)")
            name = max(members, key=lambda u: u[0].count("/"))[0]  # the member rather than its class
            touched[name.replace("/constructor", "")] = None  # a constructor is reached through its class
        return list(touched)

    async def narrow(self, path: str, lines: set[int]) -> TsResult:
        result = TsResult()
        try:
            start = await self.changed_symbols(path, lines)
        except ValueError as exc:
            result.fallback = str(exc)
            return result
        result.symbols = [f"{path}:{name}" for name in start]
        queue = deque(((path, name), [f"{path}:{name}"]) for name in start)
        seen = {(path, name) for name in start}
        while queue and result.fallback is None:
            (where, name), chain = queue.popleft()
            answer = await self._ask("find_referencing_symbols", {"name_path": name, "relative_path": where})
            for ref_path, by_kind in sorted((answer if isinstance(answer, dict) else {}).items()):
                for kind, entries in sorted(by_kind.items()):
                    for entry in entries:
                        follow = self._classify(result, ref_path, kind, entry, chain)
                        if result.fallback:
                            return result
                        if follow is not None and follow not in seen:
                            seen.add(follow)
                            queue.append((follow, [*chain, f"{follow[0]}:{follow[1]}"]))
        if not result.tests:
            result.fallback = f"Serena finds no test file that reaches {', '.join(start)}"
        return result

    def _classify(
        self, result: TsResult, path: str, kind: str, entry: dict[str, Any], chain: list[str]
    ) -> tuple[str, str] | None:
        marked = _MARKED.search(entry.get("content_around_reference") or "")
        line = marked.group(2) if marked else ""
        name_path = entry.get("name_path", "")
        if kind == "File" and _IMPORT.match(line):
            if _RENAMED.search(line):
                result.fallback = f"{path} imports or re-exports {chain[-1]} under another name: uses not traced"
            return None  # a plain import: the uses of the imported name are references of their own
        if path in self.test_files:
            result.tests.setdefault(path, [*chain, path])
            if found := runner_test_id(path, name_path):
                result.titles.setdefault(path, set()).add(found)
            else:  # a helper, a hook or module-level code of the test file: all of its tests
                result.whole.add(path)
            return None
        named = name_path.split("/")
        while named and named[-1].endswith(" callback"):
            named.pop()  # a callback inside a function belongs to that function
        if kind == "File" or not named:
            result.fallback = f"module-level code of {path} uses {chain[-1]} (where it goes is not traced)"
            return None
        if len(chain) > MAX_DEPTH:
            result.fallback = f"{chain[0]} is reached through more than {MAX_DEPTH} callers"
            return None
        return path, "/".join(named)


async def ts_narrowing(js: dict[str, Any], changes: dict[str, Any], removed: set[str]) -> dict[str, Any]:
    """Narrow `js["impacted_tests"]` (js_impact.py) in place; return what Serena did, for the reply."""
    peer = current_serena()
    if peer is None:
        return {"used": False, "reason": "no Serena instance of this client is running: import graph only"}
    tests = set(js.get("_tests") or ())
    candidates = sorted(p for p in js.get("_mapped") or () if p not in tests and changes[p].status != "deleted")
    fallbacks = [{"path": p, "reason": "a definition was removed"} for p in candidates if p in removed]
    asked = [p for p in candidates if p not in removed][:MAX_FILES]
    fallbacks += [{"path": p, "reason": f"more than {MAX_FILES} changed files"} for p in candidates[MAX_FILES:]]
    narrowed: dict[str, TsResult] = {}
    try:
        async with SerenaPeer(*peer) as serena:
            walk = TsWalk(serena, tests)
            for path in asked:
                result = await walk.narrow(path, changes[path].new_lines)
                if result.fallback:
                    fallbacks.append({"path": path, "reason": result.fallback})
                else:
                    narrowed[path] = result
            calls = serena.calls
    except PeerUnavailable as exc:
        return {"used": False, "reason": f"{exc}: import graph only", "fallbacks": fallbacks}
    _apply(js, narrowed)
    chains = sorted({tuple(c) for r in narrowed.values() for c in r.tests.values()})
    return {
        "used": bool(narrowed),
        "reason": (
            f"Serena narrowed {len(narrowed)} changed JS/TS file(s) to the test files that reach the changed "
            f"symbols through references ({calls} queries)"
            if narrowed
            else "Serena could not narrow any changed JS/TS file: import graph only"
        ),
        "symbols": sorted({s for r in narrowed.values() for s in r.symbols}),
        "chains": [list(c) for c in chains[:MAX_CHAINS]],
        "chains_total": len(chains),
        "narrowed_files": sorted(narrowed),
        "fallbacks": fallbacks[:50],
    }


def _apply(js: dict[str, Any], narrowed: dict[str, TsResult]) -> None:
    """Keep a test file reached through a change Serena did not narrow; one reached only through narrowed
    changes stays when Serena shows a reference chain to it, with the chain and the tests reached."""
    if not narrowed:
        return
    graph, tests = js["_graph"], set(js["_tests"])
    rest = graph.impacted(set(js["_mapped"]) - set(narrowed), tests)
    reached: dict[str, list[str]] = {}
    titles: dict[str, set[str]] = {}
    whole: set[str] = set()
    for result in narrowed.values():
        whole |= result.whole
        for test, chain in result.tests.items():
            reached.setdefault(test, chain)
            titles.setdefault(test, set()).update(result.titles.get(test, set()))
    kept = []
    for entry in js["impacted_tests"]:
        path = entry["path"]
        if path in rest:
            kept.append(entry)
        elif path in reached:
            chain = " -> ".join(reached[path])
            scope = "file" if path in whole or not titles.get(path) else "functions"
            kept.append(
                {
                    **entry,
                    "reason": f"reaches the changed symbols through references (Serena): {chain}",
                    "serena_chain": reached[path],
                    "scope": scope,
                    "tests": sorted(titles.get(path, ())),
                }
            )
    js["impacted_tests"] = kept
