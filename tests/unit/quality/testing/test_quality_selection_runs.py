"""Pure parts of issue 28: names escaped for the runners' -t, deselected tests, kept runs, nothing-ran."""

from __future__ import annotations

import re

import pytest

from instances.quality.core.errors import QualityError
from instances.quality.server.runstore import RunStore
from instances.quality.testing.js_select import NameFilter, deselect, limit_args, split_test_id
from instances.quality.testing.testselect import mark_nothing_ran

PLUS = 'withBase "/foo" + "/bar"'


@pytest.mark.parametrize("joined", [f"joinURL {PLUS}", f"joinURL > {PLUS}"])  # jest's, then vitest's
def test_an_exact_name_matches_itself_as_either_runner_joins_it(joined: str) -> None:
    pattern = NameFilter(names=[f"joinURL {PLUS}"]).pattern()
    assert pattern is not None and re.search(pattern, joined)
    assert not re.search(pattern, f"joinURL {PLUS} too")  # anchored
    assert not re.search(pattern, 'joinURL withBase "/foo"  "/bar"')  # + is a character, not a quantifier


def test_a_keyword_is_a_literal_piece_of_a_name() -> None:
    keyword = NameFilter(keyword='joinURL("https://google.com/"')
    assert keyword.selects('url joinURL("https://google.com/", "a")', "vitest")
    assert not keyword.selects('url joinURLLL"https:xgoogle.com/"', "vitest")  # ( and . are literal


def test_deselected_tests_leave_the_report_and_real_skips_stay() -> None:
    report = {
        "testResults": [
            {
                "name": "/w/a.test.ts",
                "assertionResults": [
                    {"fullName": f"d {PLUS}", "status": "failed"},
                    {"fullName": "d other", "status": "skipped"},
                    {"fullName": f"d {PLUS} skipped", "status": "skipped"},
                ],
            },
            {"name": "/w/b.test.ts", "assertionResults": [{"fullName": "x", "status": "pending"}]},
        ]
    }
    assert deselect(report, "vitest", NameFilter(keyword=PLUS)) == (2, 0)
    [suite] = report["testResults"]
    assert [a["fullName"] for a in suite["assertionResults"]] == [f"d {PLUS}", f"d {PLUS} skipped"]


def test_ids_keep_their_names_byte_for_byte() -> None:
    assert split_test_id("a/b.test.ts::joinURL(\"https://x/\", '../y')") == (
        "a/b.test.ts",
        "joinURL(\"https://x/\", '../y')",
    )
    assert split_test_id("a/b.test.ts") == ("a/b.test.ts", None)


def test_limits_become_each_runners_options() -> None:
    assert limit_args("vitest", 3, 2)[0] == ["--bail=2", "--maxWorkers=3"]
    assert limit_args("jest", 1, 5)[0] == ["--bail", "--runInBand"]  # jest 30 ignores --bail=N
    assert "first failing test file" in limit_args("jest", None, 5)[1][0]
    assert limit_args("vitest", "auto", None)[0] == ["--maxWorkers=100%"]


def test_the_store_keeps_the_last_runs_within_its_bounds() -> None:
    store = RunStore(max_runs=2, max_bytes=10_000)
    ids = [store.new_id("run_tests") for _ in range(3)]
    for run_id in ids:
        assert store.keep(run_id, "run_tests", {"n": run_id})
    assert store.last("run_tests").run_id == ids[2]  # type: ignore[union-attr]
    with pytest.raises(QualityError) as err:
        store.get("run_tests", ids[0])
    assert err.value.code == "unknown_run"
    with pytest.raises(QualityError):
        store.get("lint", ids[2])  # another tool's run
    assert not store.keep(store.new_id("lint"), "lint", {"big": "x" * 20_000})
    replay = store.replay(store.get("run_tests", ids[1]))
    assert replay["served_from"]["new_run"] is False and replay["n"] == ids[1]


def test_a_run_that_ran_nothing_is_never_ok() -> None:
    counts = {"total": 3, "passed": 0, "failed": 0, "skipped": 3, "errors": 0}
    result = mark_nothing_ran({"status": "ok", "counts": counts, "runners": {}}, None)
    assert result["status"] == "error" and result["error"]["code"] == "nothing_ran"
    assert "3 skipped" in result["error"]["message"]
    ran = {"status": "ok", "counts": {**counts, "passed": 1}}
    assert mark_nothing_ran(ran, "keyword 'x'")["status"] == "ok"
    empty = {"status": "skipped", "counts": {**counts, "skipped": 0}, "reason": "no tests"}
    assert mark_nothing_ran(empty, None)["status"] == "skipped"  # no tests at all and nothing asked


def test_a_json_fixture_is_no_coverage_source() -> None:
    from instances.quality.testing.js_runners import code_only

    def entry(total: int, covered: int) -> dict:
        return {"lines": {"total": total, "covered": covered}, "branches": {"total": 0, "covered": 0}}

    summary = {"total": entry(12, 11), "/w/src/a.ts": entry(10, 9), "/w/fixtures/data.json": entry(2, 2)}
    kept = code_only(summary)
    assert set(kept) == {"total", "/w/src/a.ts"} and kept["total"]["lines"] == {"total": 10, "covered": 9}
    assert code_only({"total": entry(10, 9), "/w/src/a.ts": entry(10, 9)})["total"]["lines"]["total"] == 10
