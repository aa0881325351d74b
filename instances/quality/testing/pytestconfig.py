"""The configuration the workspace's full pytest run uses, so a run of selected files gets the same.

pytest looks for its ini file starting at the common ancestor of the arguments.  The full run (no
arguments, in the workspace) starts at the workspace; a run of `tests/a/test_x.py` starts at
`tests/a/` and can find another ini file there, or none, and then takes `tests/a/` as rootdir and
stops loading conftest.py files above it — fixtures from the top-level conftest.py vanish and the
selected files fail to collect although the full run works.  Passing the full run's ini file (`-c`)
and rootdir (`--rootdir`) explicitly makes both runs load the same conftest files and settings."""

from __future__ import annotations

import configparser
import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..core.workspace import Workspace


@dataclass
class PytestConfig:
    workspace: Path
    inifile: Path | None
    rootdir: Path
    testpaths: list[str] = field(default_factory=list)
    norecursedirs: list[str] = field(default_factory=lambda: list(DEFAULT_NORECURSE))

    def args(self) -> list[str]:
        """Arguments that give a run of selected tests the full run's configuration."""
        args = ["-c", str(self.inifile)] if self.inifile else []
        return [*args, f"--rootdir={self.rootdir}"]

    def collects(self, rel_path: str) -> bool:
        """Whether the full run (which honours `testpaths` and `norecursedirs`) would collect this
        workspace file; explicit arguments bypass both, so a selection must check."""
        directories = rel_path.split("/")[:-1]
        if any(fnmatch.fnmatch(d, pattern) for d in directories for pattern in self.norecursedirs):
            return False
        if not self.testpaths:
            return True
        for entry in self.testpaths:
            base = (self.rootdir / entry).resolve()
            try:
                target = base.relative_to(self.workspace.resolve())
            except ValueError:
                continue
            prefix = target.as_posix().rstrip("/")
            if prefix in ("", ".") or rel_path == prefix or rel_path.startswith(prefix + "/"):
                return True
        return False


DEFAULT_NORECURSE = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}")


def _ini_kind(path: Path) -> tuple[bool, list[str], list[str] | None]:
    """(is this file a pytest configuration, its testpaths, its norecursedirs when set)."""
    try:
        if path.name == "pyproject.toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            options = data.get("tool", {}).get("pytest", {})
            if not isinstance(options, dict) or not options:
                return False, [], None
            section = options.get("ini_options", options)
            section = section if isinstance(section, dict) else {}
            paths, skip = section.get("testpaths", []), section.get("norecursedirs")
            listed = [skip] if isinstance(skip, str) else ([str(p) for p in skip] if skip else None)
            return True, [paths] if isinstance(paths, str) else [str(p) for p in paths], listed
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError, tomllib.TOMLDecodeError, configparser.Error):
        return path.name in ("pytest.ini", ".pytest.ini"), [], None
    section = {"setup.cfg": "tool:pytest"}.get(path.name, "pytest")
    if not parser.has_section(section):
        return path.name in ("pytest.ini", ".pytest.ini"), [], None
    skip = parser.get(section, "norecursedirs", fallback=None)
    return True, parser.get(section, "testpaths", fallback="").split(), skip.split() if skip else None


def full_run_config(ws: Workspace) -> PytestConfig:
    """The ini file and rootdir of `pytest` started in the workspace with no arguments."""
    for directory in (ws.root, *ws.root.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            candidate = directory / name
            if candidate.is_file():
                is_config, testpaths, skip = _ini_kind(candidate)
                if is_config:
                    config = PytestConfig(ws.root, candidate, directory, testpaths)
                    if skip is not None:
                        config.norecursedirs = skip
                    return config
    return PytestConfig(ws.root, None, ws.root)
