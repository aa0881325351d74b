"""The app layer's parsers and guards: Playwright, Newman and Lighthouse reports; loopback URLs only; a start
command split without a shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from instances.quality.app.api_tests import parse_newman_report
from instances.quality.app.appserver import loopback_url, split_command
from instances.quality.app.e2e import parse_playwright_report
from instances.quality.app.performance import parse_lighthouse_report
from instances.quality.core.errors import QualityError
from instances.quality.core.workspace import Workspace

DATA = Path(__file__).parents[1] / "data"


def test_playwright_report(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path)
    report = {
        "config": {"rootDir": str(tmp_path / "e2e")},
        "suites": [
            {
                "title": "shop.spec.ts",
                "file": "shop.spec.ts",
                "specs": [
                    {
                        "title": "adds",
                        "file": "shop.spec.ts",
                        "line": 3,
                        "tests": [{"status": "expected", "projectName": "chromium", "results": [{"duration": 5}]}],
                    }
                ],
                "suites": [
                    {
                        "title": "cart",
                        "file": "shop.spec.ts",
                        "specs": [
                            {
                                "title": "pays",
                                "file": "shop.spec.ts",
                                "line": 9,
                                "tests": [
                                    {
                                        "status": "unexpected",
                                        "results": [
                                            {
                                                "error": {
                                                    "message": "\x1b[31mError\x1b[39m: boom",
                                                    "location": {"line": 11},
                                                },
                                                "attachments": [
                                                    {"name": "trace", "path": str(tmp_path / "t/trace.zip")}
                                                ],
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    parsed = parse_playwright_report(report, ws, tmp_path)
    assert parsed["counts"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert [t["test"] for t in parsed["tests"]] == ["e2e/shop.spec.ts::adds", "e2e/shop.spec.ts::cart > pays"]
    [failure] = parsed["failures"]
    assert (failure["line"], failure["message"]) == (11, "Error: boom")
    assert failure["artifacts"] == [{"name": "trace", "path": "t/trace.zip", "content_type": None}]


def test_newman_report() -> None:
    report = {
        "run": {
            "executions": [
                {
                    "item": {"name": "list"},
                    "request": {
                        "method": "GET",
                        "url": {"protocol": "http", "host": ["127", "0", "0", "1"], "port": "80", "path": ["api"]},
                    },
                    "response": {"code": 200, "responseTime": 4},
                    "assertions": [{"assertion": "ok"}, {"assertion": "bad", "error": {"message": "expected 1"}}],
                },
                {
                    "item": {"name": "down"},
                    "request": {"method": "GET", "url": "http://127.0.0.1:9/"},
                    "requestError": {"message": "ECONNREFUSED"},
                },
            ]
        }
    }
    parsed = parse_newman_report(report, "c.postman_collection.json")
    assert parsed["counts"] == {"total": 3, "passed": 1, "failed": 1, "skipped": 0, "errors": 1}
    assert parsed["requests"][0]["url"] == "http://127.0.0.1:80/api"
    assert [f["test"] for f in parsed["failures"]] == [
        "c.postman_collection.json::list::bad",
        "c.postman_collection.json::down",
    ]


def test_lighthouse_report() -> None:
    report = {
        "categories": {"performance": {"score": 0.934}, "seo": {"score": None}},
        "audits": {
            "first-contentful-paint": {"numericValue": 812.345},
            "cumulative-layout-shift": {"numericValue": 0.01234},
            "total-blocking-time": {"numericValue": 0},
            "meta-description": {"title": "Has a meta description", "score": 0, "scoreDisplayMode": "binary"},
            "diagnostics": {"score": 0, "scoreDisplayMode": "informative"},
        },
        "finalDisplayedUrl": "http://127.0.0.1:8000/",
    }
    parsed = parse_lighthouse_report(report)
    assert parsed["scores"] == {"performance": 93, "seo": None}
    assert parsed["metrics"]["fcp_ms"] == 812.3 and parsed["metrics"]["cls"] == 0.0123
    assert parsed["metrics"]["lcp_ms"] is None and parsed["metrics"]["tbt_ms"] == 0
    assert [a["audit"] for a in parsed["failing_audits"]] == ["meta-description"]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3000/", "http://localhost/", "https://[::1]:8443/x", "http://127.1.2.3/"]
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert loopback_url(url, "url") == url


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "https://example.com/", "file:///etc/passwd", "127.0.0.1:80"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(QualityError) as info:
        loopback_url(url, "url")
    assert info.value.code == "bad_argument"


def test_start_command_is_split_without_a_shell() -> None:
    assert split_command("node server.js --port 3000 'a b'") == ["node", "server.js", "--port", "3000", "a b"]
    assert split_command("node a.js; rm -rf /") == ["node", "a.js;", "rm", "-rf", "/"]  # no shell meaning
    for bad in ("", "'open"):
        with pytest.raises(QualityError):
            split_command(bad)
