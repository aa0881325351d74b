"""Reply sizing: the 40 KB default, pages that do not overlap, full detail, the byte guard and edges
only when asked, on constructed results."""

from __future__ import annotations

import json

import pytest

from instances.quality.core.errors import QualityError
from instances.quality.server.sizing import DEFAULT_BUDGET, Sizing, build_reply, size_result


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
