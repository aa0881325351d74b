"""The workspace's static import graph (parsed with `ast`, never executed) and the tests that
depend on a set of changed files, each with the import chain that links them."""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from ..core.workspace import is_test_file

# Calls that import by a computed name: the graph cannot see what they load.
_DYNAMIC_ATTRS = {"import_module", "spec_from_file_location", "run_module", "run_path", "load_source", "load_module"}
_DYNAMIC_NAMES = {"__import__", "import_module"}


@dataclass
class ModuleNode:
    path: str
    name: str
    root: str
    is_package: bool
    is_test: bool
    imports: list[tuple[str, int]] = field(default_factory=list)
    dynamic: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def primary_name(path: str, files: set[str]) -> tuple[str, str]:
    """(dotted module name, sys.path root) the way pytest's rootdir-based import finds it: walk up
    while the directory is a package (has __init__.py); the first non-package directory is the root."""
    parts = path.split("/")
    stem = parts[-1][:-3]
    dirs = parts[:-1]
    i = len(dirs)
    while i > 0 and "/".join(dirs[:i]) + "/__init__.py" in files:
        i -= 1
    names = dirs[i:] + ([] if stem == "__init__" else [stem])
    return ".".join(names), "/".join(dirs[:i])


def resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str | None:
    """The absolute name of `from <level dots><module> import ...` inside module `importer`."""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    if module:
        base += module.split(".")
    return ".".join(base) or None


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dynamic_call(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _DYNAMIC_ATTRS:
        return func.attr
    if isinstance(func, ast.Name) and func.id in _DYNAMIC_NAMES:
        return func.id
    return None


def scan_imports(tree: ast.AST, name: str, is_package: bool) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    """Every import in the module (at any depth, conservatively including TYPE_CHECKING blocks),
    and every dynamic import call with its literal target when it has one."""
    imports: list[tuple[str, int]] = []
    dynamic: list[dict[str, Any]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(name, is_package, node.level, node.module) if node.level else node.module
            if base is None:
                continue
            imports.append((base, node.lineno))
            imports += [(f"{base}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and (call := _dynamic_call(node)):
            target = _literal(node.args[0]) if node.args else None
            if target and target.startswith(".") and call == "import_module":
                package = (
                    _literal(node.args[1])
                    if len(node.args) > 1
                    else next((_literal(k.value) for k in node.keywords if k.arg == "package"), None)
                )
                level = len(target) - len(target.lstrip("."))
                target = resolve_relative(package + ".x", False, level, target.lstrip(".") or None) if package else None
            literal = call in ("import_module", "__import__") and target is not None
            dynamic.append({"line": node.lineno, "call": call, "target": target if literal else None})
            if literal and target:
                imports.append((target, node.lineno))
    return imports, dynamic


def importer_chains(changed: set[str], reverse: dict[str, set[str]]) -> dict[str, list[str]]:
    """{every file that imports a changed one, directly or transitively (and the changed files):
    its chain of files down to a changed file}; breadth-first, so each chain is a shortest one.
    `reverse` maps a file to the files importing it (the Python and the JavaScript graphs share this)."""
    parent: dict[str, str | None] = dict.fromkeys(sorted(changed))
    queue = deque(parent)
    while queue:
        current = queue.popleft()
        for importer in sorted(reverse.get(current, ())):
            if importer not in parent:
                parent[importer] = current
                queue.append(importer)

    def chain(path: str) -> list[str]:
        out = [path]
        while (step := parent.get(out[-1])) is not None:
            out.append(step)
        return out

    return {path: chain(path) for path in parent}


class ImportGraph:
    """Modules of the workspace keyed by workspace-relative path, and who imports whom."""

    def __init__(self, nodes: dict[str, ModuleNode]) -> None:
        self.nodes = nodes
        self._index: dict[str, list[tuple[str, str]]] = defaultdict(list)
        roots = {n.root for n in nodes.values()} | {"", "src"}
        for path in nodes:
            for root in roots:
                prefix = f"{root}/" if root else ""
                if not path.startswith(prefix):
                    continue
                parts = path[len(prefix) : -3].split("/")
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                if parts and all(p.isidentifier() for p in parts):
                    self._index[".".join(parts)].append((root, path))
        self.edges: dict[str, set[str]] = {path: self._resolve_all(node) for path, node in nodes.items()}
        self.reverse: dict[str, set[str]] = defaultdict(set)
        for source, targets in self.edges.items():
            for target in targets:
                self.reverse[target].add(source)

    @classmethod
    def build(cls, sources: dict[str, str | None]) -> ImportGraph:
        """`sources` maps workspace-relative .py paths to their text (None: deleted file, kept as a
        node so that its importers are still found)."""
        files = set(sources)
        nodes: dict[str, ModuleNode] = {}
        for path, text in sources.items():
            name, root = primary_name(path, files)
            is_package = path.endswith("__init__.py")
            node = ModuleNode(path, name, root, is_package, is_test_file(path))
            if text is not None:
                try:
                    node.imports, node.dynamic = scan_imports(ast.parse(text), name, is_package)
                except (SyntaxError, ValueError) as exc:
                    node.error = f"cannot parse: {exc}"
            nodes[path] = node
        return cls(nodes)

    def resolve(self, name: str, importer_root: str) -> str | None:
        candidates = self._index.get(name)
        if not candidates:
            return None
        for wanted in (importer_root, "src", ""):
            for root, path in candidates:
                if root == wanted:
                    return path
        return candidates[0][1]

    def _resolve_all(self, node: ModuleNode) -> set[str]:
        targets: set[str] = set()
        for dotted, _line in node.imports:
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):
                found = self.resolve(".".join(parts[:i]), node.root)
                if found and found != node.path:
                    targets.add(found)
        return targets

    def summary(self, edge_limit: int = 2000) -> dict[str, Any]:
        edges = sorted((s, t) for s, targets in self.edges.items() for t in targets)
        return {
            "modules": len(self.nodes),
            "test_modules": sum(1 for n in self.nodes.values() if n.is_test),
            "edge_count": len(edges),
            "edges": [{"from": s, "to": t} for s, t in edges[:edge_limit]],
            "edges_truncated": len(edges) > edge_limit,
            "unparsable": sorted(p for p, n in self.nodes.items() if n.error),
        }

    def module_name(self, path: str) -> str:
        node = self.nodes.get(path)
        return node.name if node and node.name else path

    def impacted_tests(self, changed: set[str]) -> dict[str, list[str]]:
        """{test path: chain of paths from the test to a changed file}, shortest chains first.

        A test is impacted when it imports a changed module directly or transitively; when a
        conftest.py that imports one is reached, every test under that conftest's directory is too
        (its fixtures run with those tests)."""
        chains = importer_chains(changed, self.reverse)
        result = {p: chain for p, chain in chains.items() if self._is_test(p)}
        for conftest in sorted(p for p in chains if p.rsplit("/", 1)[-1] == "conftest.py"):
            directory = conftest.rsplit("/", 1)[0] + "/" if "/" in conftest else ""
            for path, node in sorted(self.nodes.items()):
                if node.is_test and path.startswith(directory) and path not in result:
                    result[path] = [path, *chains[conftest]]
        return dict(sorted(result.items()))

    def _is_test(self, path: str) -> bool:
        node = self.nodes.get(path)
        return bool(node and node.is_test)

    def describe_chain(self, chain: list[str], changed: set[str]) -> str:
        if len(chain) == 1:
            return "the test file itself changed" if chain[0] in changed else "selected"
        names = [self.module_name(p) for p in chain[1:]]
        via_conftest = chain[1].rsplit("/", 1)[-1] == "conftest.py"
        head = f"uses fixtures from {chain[1]}, which " if via_conftest else ""
        rest = names[1:] if via_conftest else names
        if not rest:
            return f"{head}changed" if via_conftest else "selected"
        verb = "imports" if len(rest) == 1 else "imports (transitively)"
        return f"{head}{verb} {' -> '.join(rest)}"
