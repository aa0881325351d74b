"""run_e2e (Playwright on Chromium), run_api_tests (Newman) and run_performance (Lighthouse) against
a small web app that `start_command` brings up, through the real server; the app is stopped after
each call, and bad input is a structured error."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest


def port_of(js_servers) -> int:
    return int((js_servers["webapp"].workspace / "app-port.txt").read_text())


def accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_playwright_runs_against_the_started_app(js_call, js_servers) -> None:
    port = port_of(js_servers)
    args = {"start_command": f"node server.js {port}", "wait_url": f"http://127.0.0.1:{port}/"}
    result, progress = await js_call("webapp", "run_e2e", args)
    data = result.structured_content
    assert data["status"] == "failed", data  # one test failed: never "ok"
    assert data["counts"] == {"total": 2, "passed": 1, "failed": 1, "skipped": 0, "errors": 0}
    assert [(t["test"], t["outcome"]) for t in data["tests"]] == [
        ("e2e/shop.spec.js::adds an item", "passed"),
        ("e2e/shop.spec.js::has the wrong title", "failed"),
    ]
    [failure] = data["failures"]
    assert (failure["file"], failure["line"]) == ("e2e/shop.spec.js", 11)
    assert "toHaveTitle" in failure["message"] and "\x1b[" not in failure["message"]
    kinds = {a["name"] for a in failure["artifacts"]}
    assert {"trace", "screenshot"} <= kinds
    workspace = js_servers["webapp"].workspace
    for artifact in failure["artifacts"]:
        assert artifact["path"].startswith(".paradise/reports/e2e-") and (workspace / artifact["path"]).is_file()
    assert data["chromium"] == "/usr/bin/chromium" and data["config"] == "playwright.config.js"
    assert data["app"]["start_command"] == ["node", "server.js", str(port)]
    assert not accepts(port)  # the app's process group was stopped
    assert progress and "1 passed, 1 failed" in result.content[0].text


async def test_newman_reports_each_request_and_assertion(js_call, js_servers) -> None:
    port = port_of(js_servers)
    args = {
        "environment": "local.postman_environment.json",
        "start_command": f"node server.js {port}",
        "wait_url": f"http://127.0.0.1:{port}/api/items",
    }
    result, _ = await js_call("webapp", "run_api_tests", args)
    data = result.structured_content
    assert data["collections"] == ["shop.postman_collection.json"]
    assert data["counts"] == {"total": 3, "passed": 2, "failed": 1, "skipped": 0, "errors": 0}
    requests = {r["name"]: r for r in data["requests"]}
    assert requests["list items"]["status_code"] == 200
    assert requests["list items"]["url"] == f"http://127.0.0.1:{port}/api/items"
    assert [(a["assertion"], a["outcome"]) for a in requests["list items"]["assertions"]] == [
        ("status is 200", "passed"),
        ("one item", "passed"),
    ]
    [failure] = data["failures"]
    assert failure["test"] == "shop.postman_collection.json::home page::is json"
    assert "valid json" in failure["message"]
    assert not accepts(port)


async def test_lighthouse_scores_and_core_metrics_with_the_report_saved(js_call, js_servers) -> None:
    port = port_of(js_servers)
    args = {"url": f"http://127.0.0.1:{port}/", "start_command": f"node server.js {port}"}
    result, _ = await js_call("webapp", "run_performance", args)
    data = result.structured_content
    assert data["status"] == "ok", data.get("error")
    assert set(data["scores"]) == {"performance", "accessibility", "best-practices", "seo"}
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in data["scores"].values())
    assert data["scores"]["accessibility"] >= 80  # a small page with a title, lang and labels
    metrics = data["metrics"]
    assert all(isinstance(metrics[k], int | float) for k in ("fcp_ms", "lcp_ms", "tbt_ms", "cls"))
    workspace = js_servers["webapp"].workspace
    saved = json.loads((workspace / data["files"]["json"]).read_text())
    assert saved["finalDisplayedUrl"] == f"http://127.0.0.1:{port}/"
    assert (workspace / data["files"]["html"]).is_file()
    assert "FCP" in result.content[0].text and not accepts(port)


@pytest.mark.parametrize(
    ("tool", "args", "code"),
    [
        ("run_e2e", {"wait_url": "http://192.0.2.10/"}, "bad_argument"),
        ("run_performance", {"url": "https://example.com/"}, "bad_argument"),
        ("run_e2e", {"path": "../outside"}, "bad_path"),
        ("run_api_tests", {"collection": "missing.postman_collection.json"}, "bad_path"),
        ("run_e2e", {"start_command": "node no-such-file.js", "wait_url": "http://127.0.0.1:9/"}, "app_failed"),
        ("run_api_tests", {"start_command": "'unclosed", "wait_url": "http://127.0.0.1:9/"}, "bad_argument"),
    ],
)
async def test_bad_input_is_a_structured_error(js_call, tool: str, args: dict, code: str) -> None:
    result, _ = await js_call("webapp", tool, args)
    assert result.is_error is True
    assert result.structured_content["error"]["code"] == code


async def test_start_command_runs_without_a_shell(js_call, js_servers) -> None:
    workspace: Path = js_servers["webapp"].workspace
    args = {"start_command": "node server.js 1; touch pwned", "wait_url": "http://127.0.0.1:9/"}
    result, _ = await js_call("webapp", "run_api_tests", args)
    assert result.structured_content["error"]["code"] in ("app_failed", "app_not_ready")
    assert not (workspace / "pwned").exists()


async def test_web_profile_report_has_e2e_and_api_sections_and_scores_them(js_call, js_servers) -> None:
    result, progress = await js_call("webapp", "quality_report", {"profile": "web"})
    data = result.structured_content
    sections = data["sections"]
    assert set(sections) == {"tests", "lint", "e2e", "api"}
    # e2e ran through the workspace's own playwright webServer (no start_command in the profile)
    assert sections["e2e"]["counts"]["passed"] == 1 and sections["e2e"]["counts"]["failed"] == 1
    assert sections["api"]["counts"]["passed"] == 2 and sections["api"]["counts"]["failed"] == 1
    metrics = data["metrics"]
    assert (metrics["e2e"]["pass_rate"], metrics["api"]["pass_rate"]) == (50.0, 66.67)
    assert metrics["tests"]["passed"] == 1 and metrics["javascript_lines"] > 0
    assert set(metrics["lint"]["by_language"]) <= {"javascript"}
    components = data["score"]["components"]
    # tests: 1 jest + 1 e2e + 2 api passed of 6 decided -> 40 x 4/6
    assert components["tests"]["earned"] == pytest.approx(26.67, abs=0.01)
    assert {"tests", "coverage", "lint"} <= set(components) and "performance" in data["score"]["excluded"]
    assert any(r.startswith("Fix 1 failing end-to-end test(s)") for r in data["recommendations"])
    assert any(r.startswith("Fix 1 failing API test(s)") for r in data["recommendations"])
    workspace = js_servers["webapp"].workspace
    html = (workspace / data["files"]["html"]).read_text()
    assert "E2E tests" in html and "API assertions" in html
    assert any("end-to-end" in (m or "") for _, _, m in progress)
    assert not accepts(port_of(js_servers))
