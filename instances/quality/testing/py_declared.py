"""The Python project's own test command: what it declares runs its tests — tox.ini's `[testenv] commands`,
a `test` script of hatch, PDM or poe in pyproject.toml, and the ini file's `addopts` — is what run_tests
runs, as js_declared.py does for package.json's `test` script.  pytest runs with the command's flags
(`-m "not slow"`, `-p plugin`, `--import-mode`, a project option such as `--runslow`) and the ini's
addopts; the flags that would take over what the quality tools need to read the result or that have
arguments of their own (verbosity, reports, coverage, xdist, stop-early, `-k`, the last-failed cache)
are left out — for addopts through `-o addopts=…` — and the reply says which flags were used and which
were not.  Paths named by the command are left to the call's own selection and `testpaths`."""

from __future__ import annotations

import configparser
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.workspace import Workspace

_OWN_OPTIONS = (
    "--verbose",
    "--quiet",
    "--color",
    "--junitxml",
    "--junit-xml",
    "--junit-prefix",
    "--cov",
    "--no-cov",
    "--numprocesses",
    "--dist",
    "--maxprocesses",
    "--exitfirst",
    "--maxfail",
    "--last-failed",
    "--failed-first",
    "--lf",
    "--ff",
    "--nf",
    "--new-first",
    "--sw",
    "--stepwise",
    "--pdb",
    "--trace",
    "--cache-clear",
    "--looponfail",
    "--collect-only",
    "--co",
    "--resultlog",
    "--html",
    "--json-report",
)
_OWN_SHORT = {"-v", "-q", "-qq", "-x", "-k", "-n", "-f"}
_TAKES_VALUE = {"-m", "-k", "-n", "-p", "-c", "-o", "--maxfail", "--numprocesses", "--dist", "--rootdir", "-W"}
_PYTEST = {"pytest", "py.test"}
_SEPARATORS = {"&&", "||", ";", "|", "&"}


@dataclass
class PythonDeclared:
    source: str
    command: str
    used: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    addopts: str | None = None
    addopts_kept: list[str] = field(default_factory=list)
    addopts_dropped: list[str] = field(default_factory=list)

    def args(self) -> list[str]:
        """pytest arguments: the command's flags, and the ini's addopts without the flags the tools own."""
        override = ["-o", f"addopts={shlex.join(self.addopts_kept)}"] if self.addopts_dropped else []
        return [*override, *self.used]

    def describe(self) -> dict[str, Any]:
        found = {"source": self.source, "command": self.command, "runner": "pytest"}
        found |= {
            "flags_used": [*self.addopts_kept, *self.used],
            "flags_not_used": [*self.addopts_dropped, *self.ignored],
        }
        return found

    def note(self) -> str:
        used, ignored = self.describe()["flags_used"], self.describe()["flags_not_used"]
        return (
            f"ran pytest as {self.source} declares ({self.command!r})"
            + (f" with {' '.join(used)}" if used else "")
            + (f"; not used: {' '.join(ignored)}" if ignored else "")
        )


def _is_own(flag: str) -> bool:
    name = flag.split("=", 1)[0]
    if name in _OWN_SHORT or (name.startswith("-v") and set(name[1:]) == {"v"}):
        return True
    return any(name == o or name.startswith(o + "-") for o in _OWN_OPTIONS)


def split_flags(args: list[str], keep_paths: bool = False) -> tuple[list[str], list[str]]:
    """(flags to run with, flags left out) of pytest's arguments; a command's paths are left out (the call's
    selection and testpaths decide), addopts' paths are kept (they are part of every run's arguments)."""
    used: list[str] = []
    ignored: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("{") and arg.endswith("}"):
            continue  # tox's {posargs} and the like
        if not arg.startswith("-"):
            (used if keep_paths else ignored).append(arg)
            continue
        group = [arg]
        if arg in _TAKES_VALUE and index < len(args):
            group.append(args[index])
            index += 1
        own = _is_own(arg) or (arg == "-p" and group[-1] == "no:cacheprovider")
        (ignored if own else used).extend(group)
    return used, ignored


def _pytest_args(command: str) -> list[str] | None:
    """The arguments after pytest in a command line (`pytest`, `py.test`, `python -m pytest`, `coverage run
    -m pytest`), or None when the command does not run pytest."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    segments: list[list[str]] = [[]]
    for arg in words:
        segments.append([]) if arg in _SEPARATORS else segments[-1].append(arg)
    for segment in segments:
        for index, arg in enumerate(segment):
            if arg.rsplit("/", 1)[-1] in _PYTEST:
                return segment[index + 1 :]
            if arg == "-m" and index + 1 < len(segment) and segment[index + 1] == "pytest":
                return segment[index + 2 :]
    return None


def _script_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # hatch: a list of commands
        return next((v for v in value if isinstance(v, str) and _pytest_args(v) is not None), None)
    if isinstance(value, dict):  # pdm/poe: {cmd = "..."} or {shell = "..."}
        return _script_text(value.get("cmd") or value.get("shell"))
    return None


def _pyproject_scripts(data: dict[str, Any]) -> list[tuple[str, Any]]:
    tool = data.get("tool") if isinstance(data.get("tool"), dict) else {}
    found: list[tuple[str, Any]] = []
    envs = (tool.get("hatch") or {}).get("envs") or {}
    for env in ("default", "test", "tests"):
        scripts = (envs.get(env) or {}).get("scripts") or {}
        found += [(f"pyproject.toml [tool.hatch.envs.{env}.scripts] {n}", scripts.get(n)) for n in ("test", "tests")]
    for name, table in (("pdm", (tool.get("pdm") or {}).get("scripts")), ("poe", (tool.get("poe") or {}).get("tasks"))):
        table = table if isinstance(table, dict) else {}
        key = "scripts" if name == "pdm" else "tasks"
        found += [(f"pyproject.toml [tool.{name}.{key}] {n}", table.get(n)) for n in ("test", "tests")]
    return found


def _tox_commands(path: Path) -> list[tuple[str, Any]]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error):
        return []
    return [
        (f"{path.name} [{s}] commands", parser.get(s, "commands"))
        for s in ("testenv",)
        if parser.has_option(s, "commands")
    ]


def declared_command(ws: Workspace) -> PythonDeclared | None:
    """The workspace's own pytest command (the first declaration that runs pytest), or None."""
    candidates: list[tuple[str, Any]] = []
    if (ws.root / "tox.ini").is_file():
        candidates += _tox_commands(ws.root / "tox.ini")
    data, error = ws.pyproject()
    if data and not error:
        candidates += _pyproject_scripts(data)
    for source, value in candidates:
        lines = value.splitlines() if isinstance(value, str) else [_script_text(value) or ""]
        for line in lines:
            args = _pytest_args(line.strip())
            if args is not None:
                used, ignored = split_flags(args)
                return PythonDeclared(source, line.strip(), used, ignored)
    return None


def ini_addopts(inifile: Path | None) -> str | None:
    """The ini file's `addopts` (pyproject's [tool.pytest.ini_options], pytest.ini, tox.ini, setup.cfg)."""
    if inifile is None:
        return None
    try:
        if inifile.name == "pyproject.toml":
            section = tomllib.loads(inifile.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {})
            value = section.get("ini_options", section).get("addopts") if isinstance(section, dict) else None
            return " ".join(value) if isinstance(value, list) else value if isinstance(value, str) else None
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(inifile.read_text(encoding="utf-8", errors="replace"))
        name = "tool:pytest" if inifile.name == "setup.cfg" else "pytest"
        return parser.get(name, "addopts", fallback=None)
    except (OSError, ValueError, tomllib.TOMLDecodeError, configparser.Error, AttributeError):
        return None


def python_declared(ws: Workspace, inifile: Path | None) -> PythonDeclared | None:
    """The declared command and the ini's addopts together; None when neither says anything."""
    found = declared_command(ws)
    addopts = ini_addopts(inifile)
    if addopts:
        try:
            kept, dropped = split_flags(shlex.split(addopts), keep_paths=True)
        except ValueError:
            kept, dropped = [], []
        found = found or PythonDeclared(f"{inifile.name} addopts" if inifile else "addopts", "pytest " + addopts)
        found.addopts, found.addopts_kept, found.addopts_dropped = addopts, kept, dropped
    return found
