"""The built-in quality service, started by the bridge and reached through it with the MCP SDK client."""

from __future__ import annotations

import textwrap

from tests.helpers import BridgeProcess, mcp_client


async def test_quality_instance_runs_the_clients_tests(bridge: BridgeProcess, tmp_path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "calc.py").write_text("def mul(a, b):\n    return a * b\n")
    (tmp_path / "tests" / "test_calc.py").write_text(
        textwrap.dedent(
            """\
            from calc import mul


            def test_mul():
                assert mul(2, 3) == 6


            def test_mul_wrong():
                assert mul(2, 2) == 5, "two times two"
            """
        )
    )
    (tmp_path / "lint_me.py").write_text("import os\n")
    created = bridge.register("qa", tmp_path, ["quality"], wait=60)
    assert created["instances"][0]["state"] == "running", created
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with mcp_client(bridge.mcp_url("qa", "quality"), created["token"]) as client:
        tests = await client.call_tool("run_tests", {}, progress_callback=on_progress)
        lint = await client.call_tool("lint", {})
        failed_id = tests.structured_content["failed_tests"][0]
        # issue 28 through the bridge: the id passed back runs exactly that test; the kept run is read back
        again = (await client.call_tool("run_tests", {"tests": [failed_id], "coverage": False})).structured_content
        run_id = tests.structured_content["run_id"]
        kept = (await client.call_tool("run_tests", {"run_id": run_id, "detail": "full"})).structured_content
    assert failed_id == "tests/test_calc.py::test_mul_wrong"
    assert again["failed_tests"] == [failed_id] and again["counts"]["total"] == 1
    assert kept["served_from"]["run_id"] == run_id and kept["counts"] == tests.structured_content["counts"]
    data = tests.structured_content
    assert data["counts"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    (failure,) = data["failures"]
    assert (failure["file"], failure["line"]) == ("tests/test_calc.py", 9)
    assert data["coverage"]["files"]["calc.py"]["line_percent"] == 100.0
    assert progress, "progress notifications must reach the client through the bridge"
    findings = lint.structured_content["findings"]
    assert [(f["file"], f["line"], f["rule"]) for f in findings] == [("lint_me.py", 1, "F401")]
    assert bridge.api("DELETE", "/clients/qa").status_code == 204
