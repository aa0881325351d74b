"""The structure rules of DESIGN.md, checked: no import cycle in bridge/ or instances/ (TYPE_CHECKING and
function-level imports included), no module over 400 lines, and runtimes that import neither aiohttp nor
sqlmodel."""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bridge", "instances")
MAX_LINES = 400
SKIP = {"node_modules", "__pycache__", ".venv"}


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for folder, dirs, files in os.walk(ROOT / package):
            dirs[:] = [d for d in dirs if d not in SKIP]
            for file in (f for f in files if f.endswith(".py")):
                found[module_name(Path(folder) / file)] = Path(folder) / file
    return dict(sorted(found.items()))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module ``name`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    # A package's __init__ re-exporting its own modules is not a cycle through them.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_under_400_lines(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_runtimes_import_neither_aiohttp_nor_sqlmodel() -> None:
    for path in (ROOT / "bridge" / "runtime").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {n.split(".")[0] for n in names} & {"aiohttp", "sqlmodel", "sqlalchemy"}, path.name


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def package_graph(package: str, graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The imports between ``package``'s children, a sub-package standing for every module inside it."""

    def child(module: str) -> str | None:
        if not module.startswith(package + "."):
            return None
        return f"{package}.{module[len(package) + 1:].split('.')[0]}"

    children: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if (source := child(module)) is not None:
            children.setdefault(source, set()).update(t for t in map(child, targets) if t and t != source)
    return children


def test_no_package_imports_a_package_that_imports_it_back() -> None:
    """Module cycles are not enough: bridge.lifecycle used bridge.mcp's client while bridge.mcp's proxy used
    bridge.lifecycle's routes, a cycle between packages with none between modules. Every package's children
    (sub-packages whole, modules as they are) must import one way."""
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    packages = [name for name, path in known.items() if path.name == "__init__.py"]
    cycles = {p: find_cycle(package_graph(p, graph)) for p in packages}
    assert not {p: c for p, c in cycles.items() if c}, {p: " -> ".join(c) for p, c in cycles.items() if c}


def test_the_package_graph_collapses_sub_packages() -> None:
    graph = {"b.x.one": {"b.y.two"}, "b.y.two": {"b.x.three"}, "b.x.three": set(), "b.z": {"b.x.one"}}
    assert package_graph("b", graph) == {"b.x": {"b.y"}, "b.y": {"b.x"}, "b.z": {"b.x"}}
    assert find_cycle(package_graph("b", graph)) == ["b.x", "b.y", "b.x"]
    assert find_cycle(graph) is None  # no module cycle, yet the packages import each other


QUALITY = "instances.quality"
QUALITY_LAYERS = ("core", "testing", "impact", "checks", "app", "reports", "server")
"""The quality instance's layers, lowest first: each may import only the layers before it. From its import
graph: testing runs tests on core; impact selects tests with testing's history, contexts and runners;
checks and app use core (app parses with testing); reports runs all of them; the server registers them."""


def upward_imports(package: str, layers: tuple[str, ...], graph: dict[str, set[str]]) -> list[str]:
    """Every import of ``package``'s layers that reaches a layer above (or beside) the importer's own."""
    rank = {f"{package}.{layer}": i for i, layer in enumerate(layers)}
    return sorted(
        f"{source} -> {target}"
        for source, targets in package_graph(package, graph).items()
        if source in rank
        for target in targets
        if rank.get(target, len(layers)) > rank[source]
    )


def test_quality_layers_import_only_downward() -> None:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert upward_imports(QUALITY, QUALITY_LAYERS, graph) == []


def test_every_quality_module_is_in_a_layer() -> None:
    children = {name.split(".")[2] for name in modules() if name.startswith(QUALITY + ".")}
    assert children == {*QUALITY_LAYERS, "__main__"}
    for layer in QUALITY_LAYERS:
        assert (ROOT / "instances" / "quality" / layer / "__init__.py").is_file(), layer


def test_an_upward_import_is_found() -> None:
    graph = {"q.core.a": {"q.testing.b"}, "q.testing.b": {"q.core.c"}, "q.core.c": set(), "q.server.s": {"q.core.a"}}
    assert upward_imports("q", ("core", "testing", "server"), graph) == ["q.core -> q.testing"]
    graph["q.testing.b"] = {"q.elsewhere"}  # a child that is no layer counts as above every layer
    graph["q.elsewhere"] = set()
    found = upward_imports("q", ("core", "testing", "server"), graph)
    assert found == ["q.core -> q.testing", "q.testing -> q.elsewhere"]
