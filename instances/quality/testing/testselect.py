"""run_tests' selection by id, and the rule that a run which ran nothing is never `ok`.

Ids are what the replies give: `file::name` with the file relative to the workspace and the name
exactly as the runner reported it (pytest's node id after the file; jest/vitest's full name).  Only
the file part is a path; it is checked to be a file of the workspace, and the name is never touched.
A keyword holding `::` is such an id too (an agent pasting an id into `keyword` means that test)."""

from __future__ import annotations

from typing import Any

from ..core.errors import QualityError
from ..core.workspace import Workspace
from .js_select import MAX_IDS, split_test_id

FIX = (
    "pass ids exactly as a reply gives them (failed_tests / failures[].test: 'file::name'), or a keyword "
    "that is part of a test's name; run without a filter to see every test"
)


def parse_ids(ws: Workspace, tests: list[str]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """(pytest node ids, [(JS test file, full name or None)]) of `tests`; a bad id is a bad_argument."""
    if not isinstance(tests, list) or not tests:
        raise QualityError("bad_argument", "tests must be a non-empty list of test ids ('file::name')")
    if len(tests) > MAX_IDS:
        raise QualityError("bad_argument", f"tests takes at most {MAX_IDS} ids")
    python: list[str] = []
    javascript: list[tuple[str, str | None]] = []
    for test_id in tests:
        try:
            file, name = split_test_id(test_id)
        except ValueError as exc:
            raise QualityError("bad_argument", str(exc)) from None
        path = ws.resolve(file)
        if not path.is_file():
            raise QualityError("bad_argument", f"the file of test id {test_id!r} is not a file: {file!r}")
        rel = path.relative_to(ws.root).as_posix()
        if rel.endswith(".py"):
            arg = f"./{rel}" if rel.startswith("-") else rel
            python.append(arg if name is None else f"{arg}::{name}")
        else:
            javascript.append((rel, name))
    return python, javascript


def describe_selection(path: str | None, keyword: str | None, tests: list[str] | None) -> str | None:
    """What the call asked to run, in words (None: everything)."""
    if tests:
        shown = ", ".join(repr(t) for t in tests[:3])
        return f"tests={shown}" + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
    parts = [f"path {path!r}"] if path else []
    parts += [f"keyword {keyword!r}"] if keyword else []
    return " and ".join(parts) or None


def mark_nothing_ran(result: dict[str, Any], selection: str | None) -> dict[str, Any]:
    """A run where no test passed, failed or errored is an error saying so and why, never `ok`."""
    counts = result.get("counts", {})
    if result.get("status") not in ("ok", "partial", "skipped"):
        return result
    if counts.get("passed", 0) + counts.get("failed", 0) + counts.get("errors", 0):
        return result
    if result.get("status") == "skipped" and not selection:
        return result  # a workspace without tests: nothing to run, and the reply says why
    skipped, deselected = counts.get("skipped", 0), result.get("deselected", 0)
    why = f"{selection} selected no test that ran" if selection else "the runners found no test that ran"
    details = [f"{skipped} skipped"] if skipped else []
    details += [f"{deselected} filtered out by the selection"] if deselected else []
    for name, section in result.get("runners", {}).items():
        said = section.get("reason") or (section.get("error") or {}).get("message")
        details += [f"{name}: {said}"] if said and section.get("status") in ("skipped", "error") else []
    message = f"nothing ran: {why}" + (f" ({'; '.join(details)})" if details else "")
    result.update(status="error", nothing_ran=True, error={"code": "nothing_ran", "message": message, "fix": FIX})
    return result


def pytest_keyword_problem(keyword: str) -> str | None:
    """Why pytest's `-k` cannot read `keyword` (its expression language has no quotes or calls), or None.
    Checked with pytest's own parser, imported only when a keyword is given."""
    try:
        from _pytest.mark.expression import Expression
    except ImportError:
        return None
    try:
        Expression.compile(keyword)
    except SyntaxError as exc:
        return (
            f"pytest's -k cannot read the keyword {keyword!r} ({exc.msg}): pytest was not run; pass the test's "
            "id as tests=['file.py::name'] to run it"
        )
    return None
