"""The job registry the dashboard reads: fed by Progress (with and without an MCP reporter), summaries of
finished runs with their trend, and the last summary surviving a restart (a new registry on the same folder)."""

from __future__ import annotations

import json
from pathlib import Path

from instances.quality.core.jobs import SUMMARY_FILE, JobRegistry
from instances.quality.core.progress import Progress


async def test_progress_feeds_the_job_without_an_mcp_reporter() -> None:
    jobs = JobRegistry()
    job = jobs.begin("run_tests")
    progress = Progress(None, 2, job.update)
    await progress.step(1, "running tests")
    (running,) = jobs.status()["running"]
    assert (running["tool"], running["message"], running["progress"], running["total"]) == (
        "run_tests", "running tests", 1.0, 2.0,
    )
    await progress.heartbeat("pytest", 10)(5.0)
    assert jobs.status()["running"][0]["progress"] == 1.5
    assert jobs.status()["running"][0]["message"] == "pytest: 5s elapsed (limit 10s)"


async def test_the_job_hears_the_same_values_as_the_mcp_client() -> None:
    jobs = JobRegistry()
    job = jobs.begin("lint")
    sent: list[tuple[float, float | None, str | None]] = []

    async def report(value: float, total: float | None, message: str | None) -> None:
        sent.append((value, total, message))

    progress = Progress(report, 3, job.update)
    await progress.step(1, "one")
    await progress.step(0, "a stale step")
    await progress.step(2, "two")
    assert [s[0] for s in sent] == [1.0, 1.0, 2.0]  # never backwards: the stale step is clamped
    view = jobs.status()["running"][0]
    assert (view["progress"], view["total"], view["message"]) == sent[-1]


async def test_a_failing_listener_never_fails_the_tool() -> None:
    def broken(value: float, total: float | None, message: str | None) -> None:
        raise RuntimeError("listener broke")

    sent: list[float] = []

    async def report(value: float, total: float | None, message: str | None) -> None:
        sent.append(value)

    progress = Progress(report, 1, broken)
    await progress.step(0, "start")
    await progress.done()
    assert sent == [0.0, 1.0]


def _test_result(failed: int, names: list[str]) -> dict:
    counts = {"total": 3, "passed": 3 - failed, "failed": failed, "skipped": 0, "errors": 0}
    return {"tool": "run_tests", "status": "ok", "counts": counts, "failed_tests": names, "failures": []}


def test_finished_runs_are_summarized_with_a_trend(tmp_path: Path) -> None:
    jobs = JobRegistry(tmp_path)
    first = jobs.finish(jobs.begin("run_tests"), _test_result(2, ["t::a", "t::b"]))
    assert (first["failures"], first["failed"], first["trend"]["direction"]) == (2, ["t::a", "t::b"], "first run")
    second = jobs.finish(jobs.begin("run_tests"), _test_result(1, ["t::a"]))
    assert second["trend"] == {"metric": "failures", "previous": 2, "direction": "improving"}
    lint = jobs.finish(jobs.begin("lint"), {"status": "ok", "counts": {"total": 4, "by_rule": {}}})
    assert (lint["findings"], lint["failures"]) == (4, None)
    status = jobs.status()
    assert status["running"] == [] and status["last"]["tool"] == "lint"
    assert status["report_html"] is None and status["last_report"] is None


def test_a_report_summary_has_its_score_and_the_html_is_found(tmp_path: Path) -> None:
    jobs = JobRegistry(tmp_path)
    (tmp_path / "report-20260101T000000000Z-quick.html").write_text("<p>old</p>")
    (tmp_path / "report-20260102T000000000Z-quick.html").write_text("<p>new</p>")
    report = {
        "status": "partial",
        "score": {"value": 71},
        "passed": False,
        "metrics": {"tests": {"failed": 1, "errors": 1}, "lint": {"total": 3}, "security": {"total": 0}},
        "sections": {"tests": {"failed_tests": ["tests/test_x.py::test_y"]}},
        "files": {"html": ".paradise/reports/report-20260102T000000000Z-quick.html"},
    }
    summary = jobs.finish(jobs.begin("quality_report"), report)
    assert (summary["score"], summary["failures"], summary["findings"]) == (71, 2, 3)
    assert summary["failed"] == ["tests/test_x.py::test_y"] and summary["trend"]["metric"] == "score"
    assert jobs.report_html() == tmp_path / "report-20260102T000000000Z-quick.html"
    assert jobs.status()["report_html"] == "report-20260102T000000000Z-quick.html"
    lower = jobs.finish(jobs.begin("quality_report"), {**report, "score": {"value": 60}})
    assert lower["trend"] == {"metric": "score", "previous": 71, "direction": "worsening"}
    assert jobs.status()["last_report"]["score"] == 60


def test_the_last_summary_survives_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / ".paradise" / "reports"  # not there yet: the first save makes it
    jobs = JobRegistry(folder)
    jobs.finish(jobs.begin("run_tests"), _test_result(1, ["t::a"]))
    assert json.loads((folder / SUMMARY_FILE).read_text())["last"]["failures"] == 1
    again = JobRegistry(folder)
    assert again.status()["last"] == jobs.status()["last"]
    follow = again.finish(again.begin("run_tests"), _test_result(1, ["t::a"]))
    assert follow["trend"]["direction"] == "unchanged"  # the trend reaches across the restart too


def test_a_cancelled_run_and_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / SUMMARY_FILE).write_text("{not json")
    jobs = JobRegistry(tmp_path)
    assert jobs.status()["last"] is None
    summary = jobs.finish(jobs.begin("run_tests"), None)
    assert summary["status"] == "cancelled" and jobs.status()["running"] == []


def test_an_unwritable_folder_keeps_the_summary_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    jobs = JobRegistry(blocker / "reports")
    jobs.finish(jobs.begin("lint"), {"status": "ok", "counts": {"total": 0}})
    assert jobs.status()["last"]["findings"] == 0
