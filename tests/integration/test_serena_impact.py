"""Serena-aware change impact through a real bridge (process runtime): the quality instance asks the client's
own Serena (real, with its language server) which test functions reach a changed function, and runs only
those; a client without Serena gets the import graph's file-level selection, as before.

Everything is loopback; Serena comes from the shared cache venv, as in the other Serena tests.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.helpers import BridgeProcess, bridge_with_serena, kill_leftovers, listener_pid, mcp_client

pytestmark = [pytest.mark.serena, pytest.mark.slow]


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=root, check=True, capture_output=True, timeout=30,
    )


def calc_workspace(root: Path) -> Path:
    """calc.ops with add and mul (square calls mul); tests of each in their own test functions; then mul's
    body changed in the working tree."""
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc" / "__init__.py").write_text("")
    (root / "calc" / "ops.py").write_text(
        "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n\n\n"
        "def square(x):\n    return mul(x, x)\n"
    )
    (root / "tests" / "test_ops.py").write_text(
        textwrap.dedent(
            """\
            from calc.ops import add, mul, square


            def test_add():
                assert add(1, 2) == 3


            def test_mul():
                assert mul(2, 3) == 6


            class TestSquare:
                def test_square(self):
                    assert square(3) == 9
            """
        )
    )
    other = "from calc.ops import add\n\n\ndef test_sum():\n    assert add(2, 2) == 4\n"
    (root / "tests" / "test_other.py").write_text(other)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "calc")
    ops = root / "calc" / "ops.py"
    ops.write_text(ops.read_text().replace("return a * b", "return b * a"))  # one function body changed
    return root


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    proc = bridge_with_serena(tmp_path_factory.mktemp("serena-impact"), ready_timeout=180).start()
    yield proc
    for client in proc.api("GET", "/clients").json():
        proc.api("DELETE", f"/clients/{client['client_id']}")
    proc.kill(signal.SIGTERM)
    kill_leftovers(proc.data_dir)


async def call(bridge: BridgeProcess, client_id: str, token: str, tool: str) -> tuple[dict[str, Any], str]:
    async with mcp_client(bridge.mcp_url(client_id, "quality"), token, read_timeout=300) as client:
        result = await client.call_tool(tool, {})
    assert not result.is_error, result.content
    return result.structured_content, result.content[0].text


async def test_with_serena_impact_is_narrowed_to_the_test_functions_that_reach_the_change(
    bridge: BridgeProcess, tmp_path: Path
) -> None:
    created = bridge.register("semantic", calc_workspace(tmp_path / "ws"), ["serena", "quality"], wait=300)
    assert {i["service"]: i["state"] for i in created["instances"]} == {"serena": "running", "quality": "running"}
    token = created["token"]

    analysis, _ = await call(bridge, "semantic", token, "analyze_changes")
    serena = analysis["serena"]
    assert serena["used"] is True, serena
    assert serena["symbols"] == ["calc.ops.mul"]
    assert sorted(serena["chains"]) == [
        ["calc.ops.mul", "calc.ops.square", "tests/test_ops.py::TestSquare::test_square"],
        ["calc.ops.mul", "tests/test_ops.py::test_mul"],
    ]
    impacted = {t["path"]: t for t in analysis["impacted_tests"]}
    assert list(impacted) == ["tests/test_ops.py"]  # test_other.py imports calc.ops but reaches no mul
    assert impacted["tests/test_ops.py"]["scope"] == "functions"
    assert "Serena" in impacted["tests/test_ops.py"]["reason"]

    run, text = await call(bridge, "semantic", token, "run_impacted_tests")
    assert run["mode"] == "impacted"
    assert sorted(t["path"] for t in run["selected_tests"]) == [
        "tests/test_ops.py::TestSquare::test_square",
        "tests/test_ops.py::test_mul",
    ]
    assert run["counts"]["total"] == 2 and run["counts"]["passed"] == 2  # test_add and test_sum did not run
    assert run["selection"]["granularity"] == "test" and run["selection"]["changed_files_by_serena"] == 1
    assert "through references (Serena)" in run["reason"] and "Serena" in text
    assert run["analysis"]["serena"]["chains"] == serena["chains"]

    # A module-level statement runs at import: no narrowing for that file, and the reply says so.
    ops = tmp_path / "ws" / "calc" / "ops.py"
    ops.write_text(ops.read_text() + "\nLIMIT = 10\n")
    analysis, _ = await call(bridge, "semantic", token, "analyze_changes")
    assert analysis["serena"]["used"] is False
    assert [f["path"] for f in analysis["serena"]["fallbacks"]] == ["calc/ops.py"]
    assert "module- or class-level" in analysis["serena"]["fallbacks"][0]["reason"]
    assert sorted(t["path"] for t in analysis["impacted_tests"]) == ["tests/test_ops.py", "tests/test_other.py"]

    # A re-export under another name: uses as ``calc.times`` are no references pyright reports, so no narrowing.
    ops.write_text(ops.read_text().replace("\nLIMIT = 10\n", ""))
    (tmp_path / "ws" / "calc" / "__init__.py").write_text("from calc.ops import mul as times\n")
    analysis, _ = await call(bridge, "semantic", token, "analyze_changes")
    fallbacks = {f["path"]: f["reason"] for f in analysis["serena"]["fallbacks"]}
    assert "under another name" in fallbacks["calc/ops.py"], fallbacks
    assert sorted(t["path"] for t in analysis["impacted_tests"]) == ["tests/test_ops.py", "tests/test_other.py"]

    # Serena's key went to the quality instance in request headers only: not in its environment, no log.
    serena_key = psutil.Process(listener_pid(bridge.state("semantic", "serena")["port"])).environ().get(
        "PARADISE_INSTANCE_KEY"
    )
    quality_env = psutil.Process(listener_pid(bridge.state("semantic", "quality")["port"])).environ()
    assert serena_key and serena_key not in quality_env.values()
    for log in [bridge.log, *bridge.data_dir.glob("instances/**/*.log")]:
        assert serena_key not in log.read_text(errors="replace"), log


async def test_without_serena_the_import_graph_selects_whole_files(bridge: BridgeProcess, tmp_path: Path) -> None:
    created = bridge.register("graphonly", calc_workspace(tmp_path / "ws"), ["quality"], wait=120)
    token = created["token"]
    analysis, _ = await call(bridge, "graphonly", token, "analyze_changes")
    assert analysis["serena"]["used"] is False and "no Serena" in analysis["serena"]["reason"]
    assert sorted(t["path"] for t in analysis["impacted_tests"]) == ["tests/test_ops.py", "tests/test_other.py"]
    run, _ = await call(bridge, "graphonly", token, "run_impacted_tests")
    assert sorted(t["path"] for t in run["selected_tests"]) == ["tests/test_ops.py", "tests/test_other.py"]
    assert run["counts"]["total"] == 4 and run["selection"]["granularity"] == "file"
