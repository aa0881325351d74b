"""Issue 28 through the real server, MCP client and runners (pytest, jest, vitest): failing ids are the
runners' own byte for byte, each one passed back runs exactly that test, a selection that runs nothing is
an error, max_failures/workers act on every runner, and page 2 is read from the kept run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import RunningServer, serve_all, tool_caller
from js_workspaces import require_node_toolchain
from truth_workspace import JEST_IDS, MANY_IDS, PLUS, PYTEST_IDS, TYPE_ID, VITEST_IDS, build_truth

QUICK = {"coverage": False}


@pytest.fixture(scope="module")
def truth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    require_node_toolchain()
    root = build_truth(tmp_path_factory.mktemp("truth") / "ws")
    with serve_all({"truth": (root, None)}, tmp_path_factory.mktemp("truth-logs"), ready_within=120) as servers:
        yield servers


@pytest.fixture(scope="module")
def call(truth_server):
    caller = tool_caller(truth_server, read_timeout=300)

    async def run(tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        result, _ = await caller("truth", tool, args)
        data = result.structured_content
        data["_text"] = result.content[0].text
        return data

    return run


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def full_run(call) -> dict[str, Any]:
    return await call("run_tests", {**QUICK, "detail": "full"})


async def test_failing_ids_are_the_runners_own_byte_for_byte(full_run) -> None:
    failed = set(full_run["failed_tests"])
    # `//` and `..` inside names are kept: only the file part of an id is a path
    assert {*VITEST_IDS, *JEST_IDS, *PYTEST_IDS, *MANY_IDS, TYPE_ID} == failed
    assert full_run["counts"]["failed"] == len(failed)
    assert full_run["run_id"]


@pytest.mark.parametrize("test_id", [*VITEST_IDS, TYPE_ID, *JEST_IDS, *PYTEST_IDS])
async def test_each_failing_id_passed_back_runs_exactly_that_test(call, test_id: str) -> None:
    data = await call("run_tests", {**QUICK, "tests": [test_id]})
    counts = data["counts"]
    assert (counts["failed"], counts["passed"], counts["errors"]) == (1, 0, 0), data["_text"]
    assert data["failed_tests"] == [test_id]


async def test_an_id_pasted_as_keyword_runs_that_test(call) -> None:
    data = await call("run_tests", {**QUICK, "keyword": JEST_IDS[0]})
    assert data["failed_tests"] == [JEST_IDS[0]] and data["counts"]["total"] == 1


async def test_keyword_with_regex_characters_is_a_literal_part_of_the_name(call) -> None:
    data = await call("run_tests", {**QUICK, "keyword": PLUS})
    assert sorted(data["failed_tests"]) == sorted([VITEST_IDS[1], JEST_IDS[1]])
    assert data["counts"]["passed"] == 0 and data["counts"]["skipped"] == 0  # the others are not "skipped"
    assert data["deselected"] > 20
    python = data["runners"]["python"]  # pytest's -k has no quotes: said, not run
    assert python["status"] == "skipped" and "cannot read the keyword" in python["reason"]


async def test_a_selection_that_runs_nothing_is_an_error_saying_why(call) -> None:
    data = await call("run_tests", {**QUICK, "keyword": "no_such_test"})
    assert data["status"] == "error" and data["error"]["code"] == "nothing_ran"
    assert "keyword 'no_such_test'" in data["error"]["message"] and data["error"]["fix"]
    by_id = await call("run_tests", {**QUICK, "tests": ["web/src/url.test.ts::joinURL no such test"]})
    assert by_id["status"] == "error" and by_id["error"]["code"] == "nothing_ran"


async def test_max_failures_and_workers_act_on_every_runner(call) -> None:
    data = await call("run_tests", {**QUICK, "max_failures": 1, "workers": 1})
    runners = data["runners"]
    assert runners["python"]["counts"]["failed"] == 1
    # 22 runtime failures and a type test's without the limit; the type test (tsc) runs apart from --bail
    assert runners["vitest:web"]["counts"]["failed"] == 2
    assert runners["jest:legacy"]["counts"]["failed"] == 1  # 2 files fail without it; jest stops at the first
    for key, option in (("vitest:web", "--bail=1"), ("jest:legacy", "--bail")):
        assert option in runners[key]["command"] and runners[key]["stopped_early"]
        assert any("max_failures=1" in note for note in runners[key]["notes"])
    assert "--no-file-parallelism" in runners["vitest:web"]["command"]
    assert "--runInBand" in runners["jest:legacy"]["command"]


async def test_page_two_is_read_from_the_kept_run_without_running_again(call) -> None:
    first = await call("run_tests", QUICK)
    run_id = first["run_id"]
    [cut] = [m for m in first["more"] if m["path"] == "failures"]
    assert cut["pages"] >= 2 and "run_id" in first["_text"]
    second = await call("run_tests", {"page": 2})
    assert second["served_from"]["run_id"] == run_id and second["served_from"]["new_run"] is False
    assert second["run_id"] == run_id
    shown = [f["test"] for f in first["failures"]] + [f["test"] for f in second["failures"]]
    full = await call("run_tests", {"run_id": run_id, "detail": "full"})
    assert full["served_from"]["run_id"] == run_id
    assert shown == [f["test"] for f in full["failures"]][: len(shown)]
    unknown = await call("run_tests", {"run_id": "run_tests-999-abc"})
    assert unknown["status"] == "error" and unknown["error"]["code"] == "unknown_run"


async def test_the_declared_test_script_is_what_runs(full_run) -> None:
    vitest = full_run["runners"]["vitest:web"]
    # package.json: "test": "vitest run --typecheck"; the type test exists only under --typecheck
    assert vitest["declared_test_script"]["flags_used"] == ["--typecheck"] and "--typecheck" in vitest["command"]
    assert TYPE_ID in full_run["failed_tests"]
    assert any("package.json's test script" in note for note in vitest["notes"])


async def test_tsc_runs_as_a_check_where_a_tsconfig_exists(call) -> None:
    data = await call("lint", {"path": "web"})
    tsc = data["linters"]["tsc"]
    assert tsc["status"] == "ok" and tsc["projects"] == [{"tsconfig": "web/tsconfig.json", "errors": 1}]
    [finding] = [f for f in data["findings"] if f["tool"] == "tsc"]
    assert (finding["file"], finding["line"], finding["rule"]) == ("web/src/url.test-d.ts", 5, "TS2344")
