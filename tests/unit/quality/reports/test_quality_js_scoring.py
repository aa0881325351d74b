"""The score's lint component across languages."""

from __future__ import annotations

from pathlib import Path

from instances.quality.reports.scoring import quality_score

DATA = Path(__file__).parents[1] / "data"


def test_lint_component_weighs_each_language_by_its_lines() -> None:
    base = {"python_lines": 1000, "javascript_lines": 3000}
    clean_js = quality_score({**base, "lint": {"total": 20, "by_rule": {}, "by_language": {"python": 20}}})
    # python: 20 findings per 1000 lines -> 0; javascript clean -> 1; shares 1/4 and 3/4
    assert clean_js["components"]["lint"]["earned"] == 11.25
    clean_py = quality_score({**base, "lint": {"total": 60, "by_rule": {}, "by_language": {"javascript": 60}}})
    assert clean_py["components"]["lint"]["earned"] == 3.75
    perf = quality_score({"performance": {"scores": {"performance": 80}}})
    assert perf["components"]["performance"] == {"earned": 8.0, "weight": 10.0} and perf["value"] == 80
