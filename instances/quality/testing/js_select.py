"""What a jest/vitest run is asked to select, in the runner's own syntax, and what it did with it.

An agent copies a test id (`file::full name`) or a piece of a name from a reply and passes it back as
`tests=[...]` or `keyword`.  Both runners read `-t` as a regular expression, so a name such as
`withBase "/foo" + "/bar"` or `joinURL("https://x/", …)` must be escaped or it selects something else
(or nothing).  The two runners also join a test's describe blocks differently when they match `-t`
(jest with a space, vitest with " > "), while both report the name joined with spaces: a space of the
reported name therefore matches either.  The same pattern, compiled here, tells which of the tests a
runner reports as skipped were only filtered out (deselected), so they are not counted as skipped.

`max_failures` and `workers` become each runner's own options, and what a runner does differently
(jest's --bail counts failing test files) is said in the reply."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SPECIAL = frozenset("\\^$.*+?()[]{}|/")
_SEPARATOR = "( | > )"
MAX_IDS = 500


def js_escape(text: str) -> str:
    """`text` as a literal inside a JavaScript regular expression (also valid for Python's `re`)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def name_pattern(name: str) -> str:
    """A pattern matching the test `name` as either runner joins its describe blocks."""
    return _SEPARATOR.join(js_escape(part) for part in name.split(" "))


@dataclass
class NameFilter:
    """The `-t` of one run: a keyword (a literal piece of a name) or exact test names (anchored)."""

    keyword: str | None = None
    names: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.keyword) or bool(self.names)

    def pattern(self) -> str | None:
        if self.names:
            return "^(?:" + "|".join(name_pattern(n) for n in dict.fromkeys(self.names)) + ")$"
        return name_pattern(self.keyword) if self.keyword else None

    def describe(self) -> str:
        if self.names:
            shown = ", ".join(repr(n) for n in self.names[:3])
            return f"the test(s) named {shown}" + (f" and {len(self.names) - 3} more" if len(self.names) > 3 else "")
        return f"keyword {self.keyword!r}"

    def selects(self, full_name: str, runner: str) -> bool:
        """Whether the runner's `-t` selects a test reported as `full_name` (jest matches ignoring case)."""
        pattern = self.pattern()
        if pattern is None:
            return True
        return re.search(pattern, full_name, re.IGNORECASE if runner == "jest" else 0) is not None


def selection_args(runner: str, name_filter: NameFilter) -> list[str]:
    pattern = name_filter.pattern()
    return ["-t", pattern] if pattern else []


def limit_args(runner: str, workers: int | str | None, max_failures: int | None) -> tuple[list[str], list[str]]:
    """The runner's options for `workers` and `max_failures`, and what the reply says of them."""
    args: list[str] = []
    notes: list[str] = []
    if max_failures and runner == "jest":
        # jest 30 reads a bare --bail (stop after the first failing test file) but ignores --bail=N
        args.append("--bail")
        notes.append(
            f"max_failures={max_failures} -> jest --bail: jest stops after the first failing test file (the "
            "tests of that file all run; jest cannot count failing tests)"
        )
    elif max_failures:
        args.append(f"--bail={max_failures}")
        notes.append(
            f"max_failures={max_failures} -> vitest --bail={max_failures}: tests already running in other "
            "workers when the limit is reached still finish; the rest are reported as not run (skipped)"
        )
    if workers is not None:
        if workers == "auto":
            args.append("--maxWorkers=100%")
            notes.append(f"workers='auto' -> {runner} --maxWorkers=100% (one per CPU)")
        elif int(workers) <= 1:
            args.append("--runInBand" if runner == "jest" else "--no-file-parallelism")
            notes.append(f"workers={workers} -> {args[-1]} (one process)")
        else:
            args.append(f"--maxWorkers={int(workers)}")
            notes.append(f"workers={workers} -> {runner} --maxWorkers={int(workers)}")
    return args, notes


def deselect(data: dict[str, Any], runner: str, name_filter: NameFilter) -> tuple[int, int]:
    """Drop from a jest-format report the tests outside the selection and the files left with no test;
    returns (tests dropped, of which the runner ran anyway).  Most were filtered out by `-t` (reported as
    skipped or pending); `vitest --typecheck` reports its type tests whatever `-t` says."""
    if not name_filter:
        return 0, 0
    dropped = ran = 0
    kept_suites = []
    for suite in data.get("testResults", []):
        assertions = suite.get("assertionResults", [])
        kept = [a for a in assertions if name_filter.selects(a.get("fullName") or a.get("title", ""), runner)]
        dropped += len(assertions) - len(kept)
        ran += sum(1 for a in assertions if a not in kept and a.get("status") in ("passed", "failed"))
        suite["assertionResults"] = kept
        if kept or not assertions:
            kept_suites.append(suite)
    data["testResults"] = kept_suites
    return dropped, ran


def split_test_id(test_id: str) -> tuple[str, str | None]:
    """(file, test name or None for the whole file) of an id `file::name` as the replies give them."""
    if not isinstance(test_id, str) or not test_id.strip():
        raise ValueError("a test id must be a non-empty string")
    file, sep, name = test_id.partition("::")
    return file, (name if sep else None)
