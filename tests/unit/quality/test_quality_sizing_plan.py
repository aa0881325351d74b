"""Reply sizing, the plan's decisions, pytest configuration discovery, function-level change mapping
and the risk arithmetic, on constructed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instances.quality.errors import QualityError
from instances.quality.gitdiff import FileChange
from instances.quality.importgraph import ImportGraph
from instances.quality.plan import decide_workers, normalise_xdist_output, parse_workers
from instances.quality.pytestconfig import full_run_config
from instances.quality.risk import failure_rates, random_hit_chance
from instances.quality.selection import changed_function_lines, map_data_files
from instances.quality.sizing import DEFAULT_BUDGET, Sizing, build_reply, size_result
from instances.quality.workspace import Workspace


def big_lint_result(n: int = 600) -> dict:
    findings = [
        {"file": f"pkg/m{i}.py", "line": i, "rule": "F401", "severity": "warning", "message": "x" * 120}
        for i in range(n)
    ]
    findings.insert(400, {"file": "pkg/bad.py", "line": 7, "rule": "F821", "severity": "error", "message": "undef"})
    return {"tool": "lint", "status": "ok", "counts": {"total": n + 1, "by_rule": {}, "files": n}, "findings": findings}


def test_default_reply_fits_and_puts_the_most_severe_first() -> None:
    text, data = build_reply("lint", big_lint_result(), Sizing())
    assert len(text.encode()) + len(json.dumps(data, separators=(",", ":")).encode()) < DEFAULT_BUDGET
    assert data["findings"][0]["rule"] == "F821" and "pkg/bad.py:7" in text
    more = data["more"][0]
    assert (more["path"], more["total"], more["pages"]) == ("findings", 601, 25)
    assert data["reply"]["complete"] is False and data["counts"]["total"] == 601


def test_pages_do_not_overlap_and_full_detail_is_complete() -> None:
    result = big_lint_result()
    first = size_result(result, Sizing(page=1))["findings"]
    second = size_result(result, Sizing(page=2))["findings"]
    assert not {f["line"] for f in first} & {f["line"] for f in second}
    assert len(size_result(result, Sizing(detail="full"))["findings"]) == 500  # 25 x 20 per page in full
    with pytest.raises(QualityError):
        Sizing.parse("all", 1)
    with pytest.raises(QualityError):
        Sizing.parse(None, 0)


def test_byte_guard_bounds_what_no_list_limit_catches() -> None:
    result = {"tool": "x", "status": "ok", "counts": {}, "blob": {f"k{i}": "y" * 500 for i in range(300)}}
    _, data = build_reply("x", result, Sizing())
    assert len(json.dumps(data)) < DEFAULT_BUDGET and data["more"]
    assert data["status"] == "ok"


def test_edges_only_when_asked() -> None:
    result = {"tool": "analyze_changes", "status": "ok", "import_graph": {"edges": [{"from": "a", "to": "b"}] * 10}}
    assert size_result(result, Sizing())["import_graph"]["edges"] == []
    assert len(size_result(result, Sizing(), include_edges=True)["import_graph"]["edges"]) == 10


def test_plan_decisions() -> None:
    assert decide_workers(None, 2, 400, None)[0] == 2
    assert decide_workers(None, 2, 400, None, idle=1.9)[0] == 2  # an idle machine (its load average may say 1.2)
    assert decide_workers(None, 2, 400, None, idle=0.8)[0] == 1  # one CPU left: workers would only compete
    assert "busy (0.1 of 2 CPUs idle)" in decide_workers(None, 2, 400, 50.0, idle=0.1)[1]
    assert decide_workers(None, 8, 400, 50.0, idle=3.0)[0] == 3
    assert decide_workers(None, 2, 40, None) == (1, "40 tests and no recorded times: too few for workers to pay off")
    assert decide_workers(None, 2, 400, 1.2)[0] == 1
    assert decide_workers(None, 1, 400, 50.0) == (1, "only one CPU is available")
    assert decide_workers("auto", 4, 10, None)[0] == 4
    assert decide_workers(3, 2, 10, None) == (3, "workers=3 was asked for")
    assert parse_workers("2") == 2
    with pytest.raises(QualityError):
        parse_workers("many")
    line = "[gw1] [ 50%] FAILED tests/test_a.py::test_x"
    assert "tests/test_a.py::test_x FAILED" in normalise_xdist_output(line)


def test_full_run_config_finds_the_ini_and_honours_norecursedirs(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nnorecursedirs = ["fixtures"]\n', encoding="utf-8"
    )
    config = full_run_config(Workspace.open(tmp_path))
    assert config.inifile == tmp_path / "pyproject.toml"
    assert config.args() == ["-c", str(tmp_path / "pyproject.toml"), f"--rootdir={tmp_path}"]
    assert config.collects("tests/test_a.py")
    assert not config.collects("tests/fixtures/test_b.py")
    assert not config.collects("examples/test_c.py")  # outside testpaths
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    bare = full_run_config(Workspace.open(tmp_path))
    assert bare.inifile is None and bare.rootdir == tmp_path and bare.collects("examples/test_c.py")


OLD = "import os\n\n\ndef f(x):\n    y = x + 1\n    return y\n\n\ndef g(x):\n    return x\n"


def test_changes_inside_a_function_body_map_to_its_old_lines() -> None:
    new = OLD.replace("y = x + 1", "y = x + 2")
    spans = changed_function_lines(FileChange("m.py", "modified", {5}, {5}, 1, 1), new, OLD)
    assert spans == {"f": {5, 6}}
    module_level = OLD.replace("import os", "import sys")
    assert changed_function_lines(FileChange("m.py", "modified", {1}, {1}, 1, 1), module_level, OLD) is None
    signature = OLD.replace("def g(x):", "def g(x, z=1):")
    assert changed_function_lines(FileChange("m.py", "modified", {9}, {9}, 1, 1), signature, OLD) is None


def test_data_files_map_to_the_tests_that_name_them() -> None:
    sources = {"tests/test_a.py": "open('data/table.csv')", "pkg/__init__.py": "", "pkg/io.py": "NAME = 'cfg.yaml'"}
    sources["tests/test_io.py"] = "import pkg.io"
    graph = ImportGraph.build(sources)
    changes = {p: FileChange(p, "modified") for p in ("data/table.csv", "cfg.yaml", "blob.bin", "README.md")}
    mapped = map_data_files(changes, graph, sources, skip=set())
    assert {t["path"] for t in mapped["impacted_tests"]} == {"tests/test_a.py", "tests/test_io.py"}
    decisions = {f["path"]: f["decision"] for f in mapped["files"]}
    assert decisions["README.md"].startswith("ignored") and decisions["blob.bin"] == "full suite"
    assert mapped["full_suite_reasons"] == [
        "blob.bin changed and no Python file names it (a data file or unknown kind of file): the import graph "
        "cannot tell which tests read it"
    ]


def test_risk_arithmetic() -> None:
    rates = failure_rates([{"failed": ["a"]}, {"failed": []}, {"failed": ["a", "b"]}])
    assert rates == {"a": round(2.5 / 4, 3), "b": round(1.5 / 4, 3)}
    assert random_hit_chance(10, 1) == pytest.approx(0.3)
    assert random_hit_chance(3, 1) == 1.0 and random_hit_chance(0, 0) == 0.0
