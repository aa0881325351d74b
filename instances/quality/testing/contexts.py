"""Per-test coverage: which test executed which line, recorded by a full-suite run with coverage
(`--cov-context=test`) and kept under {workspace}/.paradise/coverage/, so impact selection can pick
the test functions that ran a changed function instead of whole test files.

The map is only trusted for a file whose content at the diff's base equals the content measured
(a SHA-256 per file is stored with the data): line numbers then mean the same lines."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coverage import CoverageData

from ..core.datadir import sub_dir
from ..core.workspace import Workspace

CONTEXTS_DIR = "coverage"  # under the instance's data directory (datadir.py)
DATA = "contexts.sqlite"
META = "contexts.json"
CONTEXT_ARGS = ["--cov-context=test"]
_PHASES = ("|run", "|setup", "|teardown")


def digest(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def test_of_context(context: str) -> str | None:
    """pytest-cov names a context "<node id>|run" (or |setup, |teardown for fixtures)."""
    for phase in _PHASES:
        if context.endswith(phase):
            return context[: -len(phase)]
    return None


def save_contexts(ws: Workspace, coverage_file: Path, commit: str | None) -> int | None:
    """Keep a full run's coverage data with its per-file hashes; the number of measured files, or
    None when the run left no data.  Raises OSError when .paradise cannot be written."""
    if not coverage_file.is_file():
        return None
    data = CoverageData(basename=str(coverage_file))
    data.read()
    if not data.has_arcs() and not data.measured_files():
        return None
    hashes: dict[str, str] = {}
    for measured in data.measured_files():
        rel = ws.relative(measured)
        try:
            hashes[rel] = digest((ws.root / rel).read_bytes())
        except OSError:
            continue
    directory = sub_dir(ws, CONTEXTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(coverage_file, directory / DATA)
    meta = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "files": hashes,
    }
    (directory / META).write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
    return len(hashes)


@dataclass
class ContextMap:
    """Lookup of the tests that executed given lines of a workspace file."""

    ws: Workspace
    meta: dict[str, Any]
    _data: Any
    _paths: dict[str, str]

    @classmethod
    def load(cls, ws: Workspace) -> ContextMap | None:
        directory = sub_dir(ws, CONTEXTS_DIR, reading=True)
        try:
            meta = json.loads((directory / META).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not (directory / DATA).is_file():
            return None
        data = CoverageData(basename=str(directory / DATA), read_only=True)
        try:
            data.read()
            paths = {ws.relative(p): p for p in data.measured_files()}
        except Exception:  # a damaged file (sqlite or coverage's own errors) only means "no map"
            return None
        return cls(ws, meta, data, paths)

    @property
    def recorded_at(self) -> str | None:
        return self.meta.get("recorded_at")

    def matches(self, rel: str, base_text: str | None) -> bool:
        """Whether the recorded lines of `rel` are the lines of its base version."""
        recorded = self.meta.get("files", {}).get(rel)
        return bool(recorded and base_text is not None and recorded == digest(base_text))

    def tests_for_lines(self, rel: str, lines: set[int]) -> set[str]:
        measured = self._paths.get(rel)
        if measured is None:
            return set()
        by_line = self._data.contexts_by_lineno(measured)
        tests: set[str] = set()
        for line in lines:
            for context in by_line.get(line, ()):
                test = test_of_context(context)
                if test:
                    tests.add(test)
        return tests

    def executed_lines(self, rel: str) -> set[int]:
        """Lines of `rel` that any recorded test executed."""
        measured = self._paths.get(rel)
        return set(self._data.lines(measured) or []) if measured else set()

    def all_tests(self) -> set[str]:
        return {t for c in self._data.measured_contexts() if (t := test_of_context(c))}
