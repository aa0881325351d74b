"""The JavaScript/TypeScript import graph: ES modules, CommonJS and TypeScript imports, read from the
text (never executed) and resolved the way Node and TypeScript would inside the workspace: relative
paths with extension and index lookup, tsconfig/jsconfig `paths` and `baseUrl`, and the workspace's own
packages by name through their `exports` (or `main`)."""

from __future__ import annotations

import json
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..core.js_packages import JsPackage
from .importgraph import importer_chains

EXTENSIONS = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs", ".json")
# TypeScript's ESM style names the emitted file ("./x.js") while the source is x.ts.
_EMITTED_TO_SOURCE = {".js": (".ts", ".tsx"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}
_EXPORT_CONDITIONS = ("source", "types", "import", "module", "require", "node", "browser", "default")

_Q = r"(['\"`])(?P<spec>[^'\"`\n]+?)\1"
_STATIC = [
    re.compile(r"(?<![\w$.])import\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s+from\s*)?" + _Q),
    re.compile(r"(?<![\w$.])export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*" + _Q),
]
_CALLS = re.compile(
    r"(?<![\w$.])(?P<call>require|import|(?:jest|vi)\.(?:mock|doMock|requireActual|importActual))\s*\(\s*"
)
_LITERAL_ARG = re.compile(r"(['\"])(?P<spec>[^'\"\n]+)\1\s*[,)]|`(?P<tspec>[^`$\n]+)`\s*[,)]")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def strip_comments(text: str) -> str:
    """`text` with // and /* */ comments blanked (newlines kept, so offsets keep their lines);
    string and template literals are left as they are."""
    out: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == quote or (ch == "\n" and quote != "`"):
                quote = None
            i += 1
            continue
        if ch in "'\"`":
            quote = ch
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:end]))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def mask_strings(code: str) -> str:
    """`code` with the inside of every string and template literal replaced by "x" (same length), so
    that words inside strings ("import(") are never taken for code."""
    out = list(code)
    quote: str | None = None
    i = 0
    while i < len(code):
        ch = code[i]
        if quote:
            if ch == "\\" and i + 1 < len(code):
                out[i] = out[i + 1] = "x"
                i += 2
                continue
            if ch == quote or (ch == "\n" and quote != "`"):
                quote = None
            elif ch != "\n":
                out[i] = "x"
        elif ch in "'\"`":
            quote = ch
        i += 1
    return "".join(out)


def scan_js_imports(text: str) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    """(specifier, line) of every import/export-from/require/import()/jest.mock, and the calls whose
    argument is computed (the graph cannot follow those).  Patterns are found in the code with string
    contents masked; the specifier itself is read from the same offsets of the unmasked text."""
    code = strip_comments(text)
    masked = mask_strings(code)

    def line_of(offset: int) -> int:
        return code.count("\n", 0, offset) + 1

    imports: list[tuple[str, int]] = []
    for pattern in _STATIC:
        imports += [(code[m.start("spec") : m.end("spec")], line_of(m.start())) for m in pattern.finditer(masked)]
    dynamic: list[dict[str, Any]] = []
    for match in _CALLS.finditer(masked):
        arg = _LITERAL_ARG.match(code, match.end())
        line = line_of(match.start())
        if arg:
            imports.append((arg.group("spec") or arg.group("tspec"), line))
        elif match.group("call") in ("require", "import"):
            dynamic.append({"line": line, "call": f"{match.group('call')}()", "target": None})
    return sorted(set(imports), key=lambda item: (item[1], item[0])), dynamic


def read_jsonc(text: str) -> Any:
    """tsconfig.json style JSON: comments and trailing commas allowed."""
    return json.loads(_TRAILING_COMMA.sub(r"\1", strip_comments(text)))


@dataclass
class PathAliases:
    """The `paths`/`baseUrl` of one tsconfig/jsconfig, with workspace-relative directories."""

    directory: str
    base_url: str | None
    paths: dict[str, list[str]] = field(default_factory=dict)


def load_aliases(rel_config: str, read: Any, depth: int = 0) -> PathAliases:
    """A tsconfig's aliases, following relative `extends` (the child's settings win)."""
    directory = posixpath.dirname(rel_config)
    try:
        data = read_jsonc(read(rel_config) or "{}")
    except (ValueError, TypeError):
        data = {}
    data = data if isinstance(data, dict) else {}
    inherited = PathAliases(directory, None)
    extends = data.get("extends")
    for parent in [extends] if isinstance(extends, str) else (extends if isinstance(extends, list) else []):
        if isinstance(parent, str) and parent.startswith(".") and depth < 5:
            target = posixpath.normpath(posixpath.join(directory, parent))
            target = target if target.endswith(".json") else target + ".json"
            inherited = load_aliases(target, read, depth + 1)
    options = data.get("compilerOptions") if isinstance(data.get("compilerOptions"), dict) else {}
    base_url = inherited.base_url
    if isinstance(options.get("baseUrl"), str):
        base_url = posixpath.normpath(posixpath.join(directory, options["baseUrl"]))
    paths = dict(inherited.paths)
    if isinstance(options.get("paths"), dict):
        root = base_url if base_url is not None else directory
        paths = {
            key: [posixpath.normpath(posixpath.join(root, t)) for t in targets if isinstance(t, str)]
            for key, targets in options["paths"].items()
            if isinstance(targets, list)
        }
    return PathAliases(directory, base_url, paths)


class JsResolver:
    """Resolves import specifiers to workspace files (`files`: every workspace-relative path)."""

    def __init__(self, files: set[str], packages: list[JsPackage], aliases: list[PathAliases]) -> None:
        self.files = files
        self.packages = {p.name: p for p in packages if p.name}
        self.aliases = sorted(aliases, key=lambda a: -len(a.directory))

    def _file(self, base: str) -> str | None:
        base = posixpath.normpath(base)
        if base.startswith("../") or base == "..":
            return None
        stem, ext = posixpath.splitext(base)
        candidates = [base] if ext else []
        candidates += [stem + s for s in _EMITTED_TO_SOURCE.get(ext, ())]
        candidates += [base + e for e in EXTENSIONS] + [posixpath.join(base, "index" + e) for e in EXTENSIONS]
        return next((c.removeprefix("./") for c in candidates if c.removeprefix("./") in self.files), None)

    def _aliases_for(self, importer: str) -> PathAliases | None:
        for alias in self.aliases:
            if not alias.directory or importer.startswith(alias.directory + "/"):
                return alias
        return None

    def resolve(self, importer: str, spec: str) -> str | None:
        spec = spec.split("?", 1)[0]
        if spec.startswith(("./", "../")) or spec in (".", ".."):
            return self._file(posixpath.join(posixpath.dirname(importer), spec))
        if spec.startswith("/") or ":" in spec.split("/", 1)[0]:
            return None  # absolute path or a URL/`node:` scheme
        alias = self._aliases_for(importer)
        if alias:
            for pattern, targets in alias.paths.items():
                star = _match_star(pattern, spec)
                if star is None:
                    continue
                for target in targets:
                    found = self._file(target.replace("*", star, 1))
                    if found:
                        return found
            if alias.base_url is not None:
                found = self._file(posixpath.join(alias.base_url, spec))
                if found:
                    return found
        return self._package(spec)

    def _package(self, spec: str) -> str | None:
        parts = spec.split("/")
        name = "/".join(parts[:2]) if spec.startswith("@") else parts[0]
        package = self.packages.get(name)
        if package is None:
            return None
        subpath = "." + spec[len(name) :]
        exports = package.manifest.get("exports")
        if exports is not None:
            for target in _export_targets(exports, subpath):
                found = self._file(posixpath.join(package.rel, target))
                if found:
                    return found
            return None
        if subpath != ".":
            return self._file(posixpath.join(package.rel, subpath))
        for key in ("source", "types", "module", "main"):
            entry = package.manifest.get(key)
            if isinstance(entry, str) and (found := self._file(posixpath.join(package.rel, entry))):
                return found
        return self._file(posixpath.join(package.rel, "index"))


def _match_star(pattern: str, spec: str) -> str | None:
    """What `*` stands for when `spec` matches the alias/exports `pattern` (None: no match)."""
    if "*" not in pattern:
        return "" if pattern == spec else None
    head, tail = pattern.split("*", 1)
    if spec.startswith(head) and spec.endswith(tail) and len(spec) >= len(head) + len(tail):
        return spec[len(head) : len(spec) - len(tail)]
    return None


def _condition_targets(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _condition_targets(v)]
    if isinstance(value, dict):
        keys = [k for k in _EXPORT_CONDITIONS if k in value] + [k for k in value if k not in _EXPORT_CONDITIONS]
        return [t for k in keys for t in _condition_targets(value[k])]
    return []


def _export_targets(exports: Any, subpath: str) -> list[str]:
    """Candidate files of `subpath` ("." or "./x") under a package.json `exports` field."""
    if not isinstance(exports, dict) or not any(k.startswith(".") for k in exports):
        return _condition_targets(exports) if subpath == "." else []
    if subpath in exports:
        return _condition_targets(exports[subpath])
    for pattern, value in sorted(exports.items(), key=lambda kv: -len(kv[0])):
        star = _match_star(pattern, subpath)
        if star is not None and "*" in pattern:
            return [t.replace("*", star) for t in _condition_targets(value)]
    return []


class JsImportGraph:
    """JS/TS modules keyed by workspace-relative path, who imports whom, and impacted tests."""

    def __init__(self, sources: dict[str, str | None], resolver: JsResolver) -> None:
        self.imports: dict[str, list[tuple[str, int]]] = {}
        self.dynamic: dict[str, list[dict[str, Any]]] = {}
        self.edges: dict[str, set[str]] = {}
        self.unresolved: dict[str, list[str]] = {}
        self.reverse: dict[str, set[str]] = defaultdict(set)
        for path, text in sources.items():
            self.imports[path], self.dynamic[path] = scan_js_imports(text) if text else ([], [])
            targets: set[str] = set()
            for spec, _line in self.imports[path]:
                found = resolver.resolve(path, spec)
                if found and found != path:
                    targets.add(found)
                elif found is None and spec.startswith("."):
                    self.unresolved.setdefault(path, []).append(spec)
            self.edges[path] = targets
            for target in targets:
                self.reverse[target].add(path)

    def impacted(self, changed: set[str], tests: set[str]) -> dict[str, list[str]]:
        """{test file: chain from the test to a changed file}, shortest chains (breadth-first)."""
        return {p: chain for p, chain in sorted(importer_chains(changed, self.reverse).items()) if p in tests}

    def summary(self, edge_limit: int = 2000) -> dict[str, Any]:
        edges = sorted((s, t) for s, targets in self.edges.items() for t in targets)
        return {
            "modules": len(self.edges),
            "edge_count": len(edges),
            "edges": [{"from": s, "to": t} for s, t in edges[:edge_limit]],
            "edges_truncated": len(edges) > edge_limit,
            "unresolved_relative": {k: v[:20] for k, v in sorted(self.unresolved.items())[:100]},
        }


def describe_chain(chain: list[str], changed: set[str]) -> str:
    if len(chain) == 1:
        return "the test file itself changed" if chain[0] in changed else "selected"
    verb = "imports" if len(chain) == 2 else "imports (transitively)"
    return f"{verb} {' -> '.join(chain[1:])}"
