"""A client's recorded quality runs as the dashboard reads them from its workspace: numbers only, the newest
runs, and nothing followed out of the workspace (the file is the tenant's)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bridge.dashboard import runs
from bridge.dashboard.runs import MAX_RUNS, TAIL_BYTES, parse, quality_runs


def write_history(workspace: Path, entries: list[object]) -> Path:
    folder = workspace / ".paradise" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "history.jsonl"
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries))
    return path


def entry(score: float, failed: int, errors: int = 0, at: str = "2026-12-06T05:00:00Z") -> dict[str, object]:
    return {"generated_at": at, "score": score, "passed": failed == 0,
            "metrics": {"tests": {"failed": failed, "errors": errors, "passed": 10}}, "report": "r.json"}


def test_runs_carry_score_failures_and_pass(tmp_path: Path) -> None:
    write_history(tmp_path, [entry(70, 2, 1), "not json", [1, 2], entry(85.5, 0)])
    assert quality_runs(str(tmp_path)) == [
        {"at": "2026-12-06T05:00:00Z", "score": 70, "failures": 3, "passed": False},
        {"at": "2026-12-06T05:00:00Z", "score": 85.5, "failures": 0, "passed": True},
    ]


def test_no_history_is_no_runs(tmp_path: Path) -> None:
    assert quality_runs(str(tmp_path)) == []
    assert quality_runs(str(tmp_path / "missing")) == []


def test_only_numbers_are_taken_from_a_line() -> None:
    line = json.dumps({"score": "<img src=x>", "passed": "yes", "generated_at": "x" * 500,
                       "metrics": {"tests": {"failed": True, "errors": "2"}}})
    assert parse(line.encode()) == [{"at": "x" * 40, "score": None, "failures": None, "passed": None}]


def test_a_long_history_is_read_from_its_tail_only(tmp_path: Path) -> None:
    path = write_history(tmp_path, [entry(i % 100, i % 3) for i in range(4000)])
    assert path.stat().st_size > TAIL_BYTES  # the file is larger than what is read
    found = quality_runs(str(tmp_path))
    assert len(found) == MAX_RUNS
    assert found[-1]["score"] == 3999 % 100 and found[0]["score"] == (4000 - MAX_RUNS) % 100


def test_a_symlink_out_of_the_workspace_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "other-tenant"
    write_history(secret, [entry(12, 7)])
    workspace = tmp_path / "ws"
    (workspace / ".paradise").mkdir(parents=True)
    (workspace / ".paradise" / "reports").symlink_to(secret / ".paradise" / "reports")
    assert quality_runs(str(workspace)) == []  # a linked folder
    (workspace / ".paradise" / "reports").unlink()
    (workspace / ".paradise" / "reports").mkdir()
    linked = workspace / ".paradise" / "reports" / "history.jsonl"
    linked.symlink_to(secret / ".paradise" / "reports" / "history.jsonl")
    assert quality_runs(str(workspace)) == []  # a linked file


def test_a_fifo_in_place_of_the_file_does_not_hang(tmp_path: Path) -> None:
    folder = tmp_path / ".paradise" / "reports"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "history.jsonl")
    assert quality_runs(str(tmp_path)) == []


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    runs._cache.clear()
    write_history(tmp_path, [entry(50, 1)])
    assert [r["score"] for r in quality_runs(str(tmp_path))] == [50]
    write_history(tmp_path, [entry(50, 1), entry(60, 0)])
    assert [r["score"] for r in quality_runs(str(tmp_path))] == [50, 60]
