"""What the workspace is: its files, its interpreter, its configuration and whether it is sane."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import QualityError
from .runner import run_command

# Directories never scanned: VCS data, virtual environments, caches, build output, our reports.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        ".paradise",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "build",
        "dist",
        ".eggs",
        "site-packages",
        "htmlcov",
    }
)
ESLINT_CONFIGS = (
    "eslint.config.js",
    "eslint.config.mjs",
    "eslint.config.cjs",
    "eslint.config.ts",
    ".eslintrc",
    ".eslintrc.js",
    ".eslintrc.cjs",
    ".eslintrc.json",
    ".eslintrc.yml",
    ".eslintrc.yaml",
)
_PROBE = (
    "import importlib.util, json; "
    "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in ('pytest', 'pytest_cov')}))"
)


def is_test_file(rel_path: str) -> bool:
    """pytest's default `python_files`: test_*.py and *_test.py."""
    name = rel_path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _skippable(dirname: str, full: str) -> bool:
    return dirname in SKIP_DIRS or dirname.endswith(".egg-info") or os.path.exists(os.path.join(full, "pyvenv.cfg"))


@dataclass
class Interpreter:
    path: str
    source: str  # "workspace venv" or "server"
    has_pytest: bool
    has_pytest_cov: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class Workspace:
    root: Path
    _interpreter_cache: dict[str, tuple[float, Interpreter]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Workspace:
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise QualityError("bad_workspace", f"workspace {root} is not a directory")
        return cls(root)

    # ----- files -------------------------------------------------------------------------------
    def files(self, suffixes: tuple[str, ...] = (".py",), limit: int = 20000) -> list[str]:
        """Workspace-relative POSIX paths of files with these suffixes, sorted, skipping SKIP_DIRS."""
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(
                d for d in dirnames if not _skippable(d, os.path.join(dirpath, d)) and not d.startswith(".")
            )
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                if name.endswith(suffixes):
                    rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                    found.append(rel.replace(os.sep, "/"))
                    if len(found) >= limit:
                        return found
        return found

    def python_files(self) -> list[str]:
        return self.files((".py",))

    def python_sources(self) -> dict[str, str | None]:
        """Every Python file's text by relative path (None where it cannot be read): the import graph's input."""
        sources: dict[str, str | None] = {}
        for rel in self.python_files():
            try:
                sources[rel] = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                sources[rel] = None
        return sources

    def test_files(self) -> list[str]:
        return [p for p in self.python_files() if is_test_file(p)]

    def source_lines(self, paths: list[str]) -> int:
        """Non-blank lines in these files (the size used for lint density)."""
        total = 0
        for rel in paths:
            try:
                text = (self.root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            total += sum(1 for line in text.splitlines() if line.strip())
        return total

    def resolve(self, rel: str | None) -> Path:
        """A caller-supplied path, which must exist inside the workspace."""
        if not rel:
            return self.root
        candidate = (self.root / rel).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise QualityError("bad_path", f"path {rel!r} is outside the workspace")
        if not candidate.exists():
            raise QualityError("bad_path", f"path {rel!r} does not exist in the workspace")
        return candidate

    def target(self, rel: str | None) -> str:
        """A caller-supplied path as a command-line argument: "." for the whole workspace, and never
        starting with "-" (so a file named like an option cannot become one)."""
        arg = self.resolve(rel).relative_to(self.root).as_posix()
        if arg in ("", "."):
            return "."
        return f"./{arg}" if arg.startswith("-") else arg

    def relative(self, path: str) -> str:
        """A tool's reported path (absolute or relative to the workspace) as workspace-relative."""
        p = Path(path)
        if p.is_absolute():
            try:
                return p.resolve().relative_to(self.root).as_posix()
            except ValueError:
                return p.as_posix()
        return p.as_posix()

    # ----- configuration -------------------------------------------------------------------------
    def pyproject(self) -> tuple[dict[str, Any] | None, str | None]:
        """(parsed pyproject.toml or None, error message when it exists but does not parse)."""
        path = self.root / "pyproject.toml"
        if not path.is_file():
            return None, None
        try:
            return tomllib.loads(path.read_text(encoding="utf-8")), None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            return None, f"pyproject.toml is invalid: {exc}"

    def has_coverage_config(self) -> bool:
        if (self.root / ".coveragerc").is_file():
            return True
        data, _ = self.pyproject()
        if data and "coverage" in data.get("tool", {}):
            return True
        for name in ("setup.cfg", "tox.ini"):
            path = self.root / name
            if path.is_file() and "[coverage:" in path.read_text(encoding="utf-8", errors="replace"):
                return True
        return False

    def package_json(self) -> tuple[dict[str, Any] | None, str | None]:
        path = self.root / "package.json"
        if not path.is_file():
            return None, None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, f"package.json is invalid: {exc}"
        return (data, None) if isinstance(data, dict) else (None, "package.json is not an object")

    def declares_jest(self, pkg: dict[str, Any]) -> bool:
        deps = {**pkg.get("dependencies", {}), **pkg.get("devDependencies", {})}
        scripts = pkg.get("scripts", {}) if isinstance(pkg.get("scripts"), dict) else {}
        return "jest" in deps or "jest" in pkg or "jest" in str(scripts.get("test", ""))

    def eslint_config(self, pkg: dict[str, Any] | None) -> str | None:
        for name in ESLINT_CONFIGS:
            if (self.root / name).is_file():
                return name
        if pkg and "eslintConfig" in pkg:
            return "package.json#eslintConfig"
        return None

    def node_bin(self, name: str) -> str | None:
        path = self.root / "node_modules" / ".bin" / name
        return str(path) if path.exists() else None

    def venv_python(self) -> str | None:
        for candidate in (".venv/bin/python", "venv/bin/python"):
            path = self.root / candidate
            if path.exists():
                return str(path)
        return None

    async def interpreter(self) -> Interpreter:
        """The Python that runs the tests.

        The workspace's own virtual environment (.venv or venv) comes first because it has the
        project's dependencies, so the tests import what they import in the developer's shell.  If
        there is none, or it lacks pytest, the server's own interpreter (sys.executable, which always
        has pytest and pytest-cov) is used and the result says so."""
        notes: list[str] = []
        venv = self.venv_python()
        if venv:
            probe = await self._probe(venv)
            if probe.has_pytest:
                return probe
            notes.append(f"{venv} has no pytest; using the server's interpreter instead")
        server = await self._probe(sys.executable, "server")
        server.notes[:0] = notes
        return server

    async def _probe(self, python: str, source: str = "workspace venv") -> Interpreter:
        try:
            stamp = os.stat(python).st_mtime
        except OSError:
            stamp = 0.0
        cached = self._interpreter_cache.get(python)
        if cached and cached[0] == stamp:
            return Interpreter(**{**cached[1].__dict__, "notes": list(cached[1].notes)})
        result = await run_command([python, "-c", _PROBE], cwd=self.root, timeout=30)
        try:
            found = json.loads(result.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            found = {}
        interp = Interpreter(python, source, bool(found.get("pytest")), bool(found.get("pytest_cov")))
        if not found:
            interp.notes.append(f"could not probe {python}: {result.problem(30) or result.tail(3)}")
        self._interpreter_cache[python] = (stamp, interp)
        return Interpreter(**{**interp.__dict__, "notes": list(interp.notes)})
