"""Changed functions mapped to their old lines, data files mapped to the tests that name them, and the risk
arithmetic, on constructed inputs."""

from __future__ import annotations

import pytest

from instances.quality.impact.gitdiff import FileChange
from instances.quality.impact.importgraph import ImportGraph
from instances.quality.impact.risk import failure_rates, random_hit_chance
from instances.quality.impact.selection import changed_function_lines, map_data_files

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
