"""The catalog's ready check: what counts as an answer that shows nothing of the workspace."""

from __future__ import annotations

from bridge.catalog import load_catalog
from bridge.catalog.services import ReadyCheck

CHECK = ReadyCheck(name="search_for_pattern")


def test_empty_answers_show_nothing() -> None:
    for answer in ("", "  ", "[]", "{}", '{"files": [], "dirs": []}', "null", '""',
                   '{"error": "permission denied", "project_root": "/workspace"}',
                   "Error executing tool: PermissionError: [Errno 13] Permission denied: '/workspace'"):
        assert CHECK.shows_nothing(answer), answer


def test_answers_with_content_show_something() -> None:
    for answer in ('{"src/model.py": ["  0:class Thing:"]}', '["src/model.py"]', '{"dirs": ["src"], "files": []}',
                   "The answer is too long (5123 characters). Please try a more specific tool query."):
        assert not CHECK.shows_nothing(answer), answer


def test_expect_nonempty_off_accepts_anything() -> None:
    assert not ReadyCheck(name="x", expect_nonempty=False).shows_nothing("[]")


def test_serena_has_a_workspace_ready_check_that_its_ide_context_serves() -> None:
    check = load_catalog()["serena"].ready_check
    assert check is not None and check.expect_nonempty
    assert check.name == "search_for_pattern"  # list_dir and find_file are excluded by Serena's "ide" context
    assert check.arguments["substring_pattern"] == "." and check.arguments["max_answer_chars"] <= 1000
