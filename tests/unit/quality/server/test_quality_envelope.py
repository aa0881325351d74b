"""The envelope every tool call goes through: `page` or `detail='full'` without `run_id` read the tool's last
kept run back and run nothing; the first call of a tool, with nothing kept yet, runs."""

from __future__ import annotations

from functools import partial
from typing import Any

from instances.quality.server.envelope import invoke_tool
from instances.quality.server.runstore import RunStore


def _counting_tool() -> tuple[list[int], Any]:
    calls: list[int] = []

    async def work(*, progress: Any) -> dict[str, Any]:
        calls.append(1)
        failures = [{"test": f"t.py::test_{i}", "message": "x" * 400} for i in range(200)]
        return {"tool": "run_tests", "status": "failed", "counts": {"failed": 200}, "failures": failures}

    return calls, work


async def test_full_detail_and_later_pages_read_the_last_run_without_running() -> None:
    calls, work = _counting_tool()
    runs = RunStore()
    first = (await invoke_tool("run_tests", None, 1, work, runs=runs)).structured_content
    assert len(calls) == 1 and len(first["failures"]) < 200
    full = (await invoke_tool("run_tests", None, 1, work, "full", runs=runs)).structured_content
    assert len(calls) == 1, "detail='full' without run_id ran the tool again"
    assert full["served_from"]["run_id"] == first["run_id"] and len(full["failures"]) == 200
    page = (await invoke_tool("run_tests", None, 1, work, "summary", 2, runs=runs)).structured_content
    assert len(calls) == 1 and page["served_from"]["run_id"] == first["run_id"]


async def test_full_detail_with_nothing_kept_runs_once() -> None:
    calls, work = _counting_tool()
    full = (await invoke_tool("run_tests", None, 1, work, "full", runs=RunStore())).structured_content
    assert len(calls) == 1 and len(full["failures"]) == 200 and "served_from" not in full


async def test_a_call_naming_another_argument_is_a_new_run_and_a_read_back_says_what_ran() -> None:
    calls, work = _counting_tool()

    async def body(*, progress: Any, path: str | None = None) -> dict[str, Any]:
        return await work(progress=progress)

    runs = RunStore()
    first = (await invoke_tool("run_tests", None, 1, partial(body, path="tests/a"), runs=runs)).structured_content
    again = (await invoke_tool("run_tests", None, 1, partial(body, path=None), "full", runs=runs)).structured_content
    assert len(calls) == 1 and again["served_from"]["arguments"] == {"path": "tests/a"}
    other = (
        await invoke_tool("run_tests", None, 1, partial(body, path="tests/b"), "full", runs=runs)
    ).structured_content
    assert len(calls) == 2 and "served_from" not in other and other["run_id"] != first["run_id"]
