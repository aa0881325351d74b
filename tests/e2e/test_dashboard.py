"""The dashboard: its WebSocket protocol (no browser needed) and the page itself in headless Chromium (live
states, a refused token, quality runs). Charts and actions: test_dashboard_charts.py; the browser: chromium.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.e2e.chromium import WATCH_ROW, browser, screenshot, status, wait_for
from tests.helpers import BridgeProcess, mcp_client

__all__ = ["browser"]  # the module's driver fixture, shared with test_dashboard_charts.py

def register(bridge: BridgeProcess, client_id: str, workspace: Path, services: list[str]) -> dict[str, Any]:
    """Register without waiting: the instances are still starting when this returns."""
    resp = bridge.api(
        "POST", "/clients", params={"wait": 0},
        json={"client_id": client_id, "workspace": str(workspace), "services": services},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


# ---- the page and the socket, without a browser ---------------------------------------------------------


def test_page_and_assets_hold_no_data(bridge: BridgeProcess, workspace: Path) -> None:
    register(bridge, "dash-static", workspace, ["echo"])
    page = httpx.get(bridge.url + "/dashboard", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assets = ("app.js", "charts.js", "actions.js", "style.css")
    for path in ("/dashboard", *(f"/dashboard/static/{name}" for name in assets)):
        body = httpx.get(bridge.url + path, timeout=10)
        assert body.status_code == 200, path
        assert "dash-static" not in body.text and bridge.admin_token not in body.text
    for path in ("/dashboard/static/index.htm", "/dashboard/static/..%2f..%2fsettings.py", "/dashboard/static/x"):
        assert httpx.get(bridge.url + path, timeout=10).status_code == 404, path
    assert httpx.get(bridge.url + "/dashboard/", timeout=10, follow_redirects=True).url.path == "/dashboard"


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ({"type": "auth", "token": "wrong"}, "invalid admin token"),
        ({"hello": "there"}, "first message must be"),
        ("not json", "first message must be"),
    ],
)
async def test_socket_refuses_a_wrong_token_with_a_reason(bridge: BridgeProcess, first: Any, reason: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(bridge.url + "/dashboard/ws") as ws:
        await (ws.send_json(first) if isinstance(first, dict) else ws.send_str(first))
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE  # nothing but the close frame: no data leaked
        assert msg.data == 4401
        assert reason in msg.extra


async def test_socket_sends_a_snapshot_then_live_events(bridge: BridgeProcess, workspace: Path) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(bridge.url + "/dashboard/ws") as ws:
        await ws.send_json({"type": "auth", "token": bridge.admin_token})
        first = await ws.receive_json(timeout=10)
        assert first["type"] == "snapshot"
        assert {"clients", "ports", "events", "server_time"} <= set(first)
        assert first["ports"]["size"] == len(bridge.pool)
        register(bridge, "dash-live", workspace, ["echo"])
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not _running(seen, "dash-live", "echo") and time.monotonic() < deadline:
            seen.append(await ws.receive_json(timeout=30))
    kinds = [m["event"]["kind"] for m in seen if m["type"] == "event"]
    assert "client.registered" in kinds and "instance.ready" in kinds
    assert _running(seen, "dash-live", "echo"), seen[-3:]


def _running(messages: list[dict[str, Any]], client_id: str, service: str) -> bool:
    for message in reversed(messages):
        if message["type"] == "snapshot":
            for client in message["clients"]:
                for inst in client["instances"] if client["client_id"] == client_id else []:
                    if inst["service"] == service:
                        return inst["state"] == "running"
    return False


# ---- the page in headless Chromium ----------------------------------------------------------------------



def test_new_client_appears_and_goes_live_without_reload(
    browser: Any, bridge: BridgeProcess, workspace: Path, tmp_path: Path
) -> None:
    browser.get(f"{bridge.url}/dashboard#token={bridge.admin_token}")
    wait_for(browser, "document.getElementById('status').textContent === 'live'")
    assert "token=" not in browser.current_url  # taken out of the address bar, kept in sessionStorage
    browser.execute_script("window.__page = 'same page';")
    browser.execute_script(WATCH_ROW, "dash-browser", "slow")
    register(bridge, "dash-browser", workspace, ["slow", "echo"])
    wait_for(browser, "window.__states.length > 0")
    wait_for(browser, "window.__states.includes('running')", timeout=40)
    states = browser.execute_script("return window.__states;")
    assert states[0] == "starting" and states[-1] == "running", states
    assert browser.execute_script("return window.__page;") == "same page"  # no reload happened
    row = 'tr.instance-row[data-client="dash-browser"][data-service="slow"]'
    port = browser.execute_script(f"return document.querySelector('{row} td.port').textContent;")
    assert int(port) == bridge.state("dash-browser", "slow")["port"]
    version = browser.execute_script(f"return document.querySelector('{row} td.service .version').textContent;")
    assert version == bridge.state("dash-browser", "slow")["version"] == "default"  # the version it runs
    wait_for(browser, f"/^\\d+s$/.test(document.querySelector('{row} td.uptime').textContent)")
    wait_for(browser, "document.querySelector('#events .event .kind').textContent.length > 0")
    kinds = browser.execute_script("return [...document.querySelectorAll('#events .kind')].map(e => e.textContent);")
    assert "instance.ready" in kinds and "client.registered" in kinds
    register(bridge, "dash-crashy", workspace, ["crashy"])  # a failed instance shows its last error
    crashy = 'tr.instance-row[data-client="dash-crashy"]'
    wait_for(browser, f"document.querySelector('{crashy}')?.dataset.state === 'failed'", timeout=60)
    error = browser.execute_script(f"return document.querySelector('{crashy} td.last-error').textContent;")
    assert error.startswith(bridge.state("dash-crashy", "crashy")["last_error"])  # then the log lines, folded
    screenshot(browser, tmp_path)


def test_wrong_token_is_refused_and_the_page_says_so(browser: Any, bridge: BridgeProcess, tmp_path: Path) -> None:
    browser.get("about:blank")  # a fresh page load, not just a fragment change
    browser.get(f"{bridge.url}/dashboard#token=not-the-admin-token")
    wait_for(browser, "document.getElementById('login-error').textContent.length > 0")
    error = browser.execute_script("return document.getElementById('login-error').textContent;")
    assert "refused" in error and "invalid admin token" in error
    assert browser.execute_script("return document.getElementById('main').hidden;")
    assert status(browser) == "token refused"
    browser.save_screenshot(str(tmp_path / "dashboard-refused.png"))


# ---- quality on the dashboard -----------------------------------------------------------------------

SLOW_SUITE = """\
import time


def test_slow_one():
    time.sleep(2)


def test_slow_two():
    time.sleep(2)


def test_fails():
    time.sleep(2)
    assert 1 + 1 == 3, "arithmetic"
"""

# Keeps the highest progress value and every tool seen in the quality cell, between the test's polls.
WATCH_QUALITY = """
const client = arguments[0];
window.__jobs = {tools: [], max: 0, messages: []};
const note = () => {
  const cell = document.querySelector(`tr.instance-row[data-client="${client}"] td.quality`);
  for (const job of cell ? cell.querySelectorAll('.quality-job') : []) {
    if (!window.__jobs.tools.includes(job.dataset.tool)) window.__jobs.tools.push(job.dataset.tool);
    window.__jobs.max = Math.max(window.__jobs.max, job.querySelector('progress').value);
    window.__jobs.messages.push(job.querySelector('.step').textContent);
  }
};
new MutationObserver(note).observe(document.getElementById('instances'), {subtree: true, childList: true,
  attributes: true, characterData: true});
note();
"""


def _call_in_background(bridge: BridgeProcess, client_id: str, token: str, tool: str, args: dict) -> Any:
    """Start one MCP tool call through the bridge on a thread of its own; join it, then read ``result``."""
    box: dict[str, Any] = {}

    async def call() -> None:
        try:
            async with mcp_client(bridge.mcp_url(client_id, "quality"), token) as client:
                box["result"] = await client.call_tool(tool, args)
        except Exception as exc:  # shown by the assertion that reads the box
            box["error"] = repr(exc)

    thread = threading.Thread(target=lambda: asyncio.run(call()), daemon=True)
    thread.start()
    thread.box = box  # type: ignore[attr-defined]
    return thread


def test_a_quality_run_shows_its_progress_live(browser: Any, bridge: BridgeProcess, tmp_path: Path) -> None:
    workspace = tmp_path / "slow-suite"
    (workspace / "tests").mkdir(parents=True)
    (workspace / "tests" / "test_slow.py").write_text(SLOW_SUITE)
    created = bridge.register("dash-quality", workspace, ["quality"], wait=60)
    assert created["instances"][0]["state"] == "running", created
    browser.get("about:blank")
    browser.get(f"{bridge.url}/dashboard#token={bridge.admin_token}")
    cell = "tr.instance-row[data-client=dash-quality] td.quality"
    wait_for(browser, f"document.querySelector('{cell}')")
    browser.execute_script(WATCH_QUALITY, "dash-quality")
    run = _call_in_background(bridge, "dash-quality", created["token"], "run_tests", {"coverage": False})
    wait_for(browser, "window.__jobs.tools.includes('run_tests')", timeout=30)  # the job, while it runs
    wait_for(browser, "window.__jobs.max > 0", timeout=30)  # and its progress moving
    run.join(timeout=60)
    assert run.box["result"].structured_content["counts"]["failed"] == 1, run.box
    last = f"{cell} .quality-last[data-tool=run_tests] .failures"
    assert wait_for(browser, f"document.querySelector('{last}')?.dataset.count") == "1"
    assert browser.execute_script(f"return document.querySelector('{cell}').dataset.running;") == "0"
    messages = browser.execute_script("return window.__jobs.messages;")
    assert any("pytest" in m for m in messages), messages[-3:]

    report = _call_in_background(bridge, "dash-quality", created["token"], "quality_report", {"profile": "quick"})
    report.join(timeout=60)
    html_file = workspace / report.box["result"].structured_content["files"]["html"]
    wait_for(browser, f"document.querySelector('{cell} .quality-last[data-tool=quality_report]')", timeout=15)
    href = wait_for(browser, f"document.querySelector('{cell} a.report-link')?.href")
    page = httpx.get(href, timeout=20)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("sandbox")
    assert page.text == html_file.read_text()
    forged = httpx.get(href.split("?")[0] + "?ticket=1.abc", timeout=10)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "forbidden"
    assert httpx.get(href.split("?")[0], timeout=10).status_code == 403
    screenshot(browser, tmp_path, "dashboard-quality.png")
    browser.get(href)  # the link opens the report in the browser, too
    assert browser.title.startswith("Quality report")




