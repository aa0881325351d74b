"""The dashboard: its WebSocket protocol (no browser needed) and the page itself in headless Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without
them it is skipped with a message, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.helpers import BridgeProcess, instance_pid, mcp_client

CHROMIUM = Path(os.environ.get("PARADISE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("PARADISE_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


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
    for path in ("/dashboard", "/dashboard/static/app.js", "/dashboard/static/style.css"):
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


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    message = (
        f"dashboard browser test needs {', '.join(missing)}: "
        "apt-get install -y chromium chromium-driver; pip install selenium"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: str, timeout: float = 20) -> Any:
    """Poll a JS expression in the page until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({condition});")
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {condition}: page says {_status(driver)!r}")


def _status(driver: Any) -> str:
    return driver.execute_script("return document.getElementById('status').textContent;")


# Records every state the row goes through, from the moment it appears, without polling gaps.
WATCH_ROW = """
const [client, service] = arguments;
window.__states = [];
const sel = `tr.instance-row[data-client="${client}"][data-service="${service}"]`;
const note = () => {
  const row = document.querySelector(sel);
  if (row && window.__states[window.__states.length - 1] !== row.dataset.state) window.__states.push(row.dataset.state);
};
new MutationObserver(note).observe(document.getElementById('instances'), {subtree: true, childList: true,
  attributes: true});
note();
"""


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
    wait_for(browser, f"/^\\d+s$/.test(document.querySelector('{row} td.uptime').textContent)")
    wait_for(browser, "document.querySelector('#events .event .kind').textContent.length > 0")
    kinds = browser.execute_script("return [...document.querySelectorAll('#events .kind')].map(e => e.textContent);")
    assert "instance.ready" in kinds and "client.registered" in kinds
    register(bridge, "dash-crashy", workspace, ["crashy"])  # a failed instance shows its last error
    crashy = 'tr.instance-row[data-client="dash-crashy"]'
    wait_for(browser, f"document.querySelector('{crashy}')?.dataset.state === 'failed'", timeout=60)
    error = browser.execute_script(f"return document.querySelector('{crashy} td.last-error').textContent;")
    assert error.startswith(bridge.state("dash-crashy", "crashy")["last_error"])  # then the log lines, folded
    _screenshot(browser, tmp_path)


def test_wrong_token_is_refused_and_the_page_says_so(browser: Any, bridge: BridgeProcess, tmp_path: Path) -> None:
    browser.get("about:blank")  # a fresh page load, not just a fragment change
    browser.get(f"{bridge.url}/dashboard#token=not-the-admin-token")
    wait_for(browser, "document.getElementById('login-error').textContent.length > 0")
    error = browser.execute_script("return document.getElementById('login-error').textContent;")
    assert "refused" in error and "invalid admin token" in error
    assert browser.execute_script("return document.getElementById('main').hidden;")
    assert _status(browser) == "token refused"
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
    _screenshot(browser, tmp_path, "dashboard-quality.png")
    browser.get(href)  # the link opens the report in the browser, too
    assert browser.title.startswith("Quality report")


def _screenshot(driver: Any, tmp_path: Path, name: str = "dashboard.png") -> None:
    path = tmp_path / name
    assert driver.save_screenshot(str(path)), "no screenshot"
    assert path.stat().st_size > 10_000
    with contextlib.suppress(OSError):
        shutil.copy(path, f"/tmp/{name}")  # a fixed place to look at it after a run


# ---- charts and actions -----------------------------------------------------------------------------------

CARD = 'article.chart-card[data-client="{client}"][data-service="{service}"]'
QUALITY_RUNS = [  # the lines quality_report appends to .paradise/reports/history.jsonl (trends.history_entry)
    {"generated_at": f"2026-12-0{day}T10:00:00Z", "profile": "quick", "score": score, "passed": failed == 0,
     "metrics": {"tests": {"passed": 20, "failed": failed, "errors": 0}}, "report": f"report-{day}.json"}
    for day, score, failed in ((1, 61, 4), (2, 68, 3), (3, 74, 1), (4, 90, 0))
]


class Traffic:
    """MCP calls through the bridge on a thread of its own, until stopped (gives the charts a rate)."""

    def __init__(self, bridge: BridgeProcess, client_id: str, token: str) -> None:
        self.stop, self.calls, self.errors = threading.Event(), 0, []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run(bridge, client_id, token)), daemon=True)
        self.thread.start()

    async def _run(self, bridge: BridgeProcess, client_id: str, token: str) -> None:
        try:
            async with mcp_client(bridge.mcp_url(client_id, "echo"), token) as client:
                while not self.stop.is_set() and self.calls < 5000:
                    await client.list_tools()
                    self.calls += 1
                    await asyncio.sleep(0.05)
        except Exception as exc:  # shown by the assertion on errors
            self.errors.append(repr(exc))

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _text(driver: Any, selector: str) -> str:
    return driver.execute_script(f"return document.querySelector('{selector}').textContent;")


def _points(driver: Any, card: str, metric: str) -> int:
    return int(driver.execute_script(
        f"const s = document.querySelector('{card} figure[data-metric={metric}] svg'); return s ? s.dataset.points : 0;"
    ))


@pytest.fixture(scope="module")
def charted(bridge: BridgeProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A client with recorded quality runs and an echo instance that has served traffic for two samples."""
    workspace = tmp_path_factory.mktemp("charted")
    reports = workspace / ".paradise" / "reports"
    reports.mkdir(parents=True)
    (reports / "history.jsonl").write_text("".join(json.dumps(run) + "\n" for run in QUALITY_RUNS))
    return bridge.register("dash-charts", workspace, ["echo"], wait=30)


def test_charts_draw_each_instances_last_hour_and_the_quality_runs(
    browser: Any, bridge: BridgeProcess, charted: dict[str, Any], tmp_path: Path
) -> None:
    card = CARD.format(client="dash-charts", service="echo")
    with Traffic(bridge, "dash-charts", charted["token"]) as traffic:
        browser.get("about:blank")
        browser.get(f"{bridge.url}/dashboard#token={bridge.admin_token}")
        wait_for(browser, f"document.querySelector('{card}')")
        # The first sample after registration has memory; a rate and latency need a second one (10 s later).
        wait_for(browser, f"document.querySelector('{card} figure[data-metric=latency] svg')?.dataset.points > 0",
                 timeout=45)
    assert not traffic.errors and traffic.calls > 0, traffic.errors
    for metric in ("memory", "rps", "latency"):
        assert _points(browser, card, metric) >= 1, metric
    assert browser.execute_script(f"return document.querySelectorAll('{card} svg polyline').length;") >= 3
    memory = _text(browser, f"{card} figure[data-metric=memory] .chart-value")
    assert memory.endswith("MiB") and float(memory.split()[0]) > 1, memory  # a real process's resident memory
    requests = _text(browser, f"{card} figure[data-metric=rps] .chart-value")
    assert float(requests.removesuffix("/s")) > 0, requests
    quality = 'article.quality-card[data-client="dash-charts"]'
    assert browser.execute_script(f"return document.querySelector('{quality} svg').dataset.points;") == "4"
    bars = browser.execute_script(
        f"return [...document.querySelectorAll('{quality} rect.failures')].map(r => r.dataset.failures);"
    )
    assert bars == ["4", "3", "1"]  # the last run had no failures: no bar
    assert "score 90" in _text(browser, f"{quality} .chart-value")
    _screenshot(browser, tmp_path, "dashboard-charts.png")


def test_restart_from_the_page_restarts_the_instance_and_the_page_shows_it(
    browser: Any, bridge: BridgeProcess, charted: dict[str, Any]
) -> None:
    before = bridge.state("dash-charts", "echo")
    pid = instance_pid(bridge, "dash-charts", "echo")
    browser.get("about:blank")
    browser.get(f"{bridge.url}/dashboard#token={bridge.admin_token}")
    row = 'tr.instance-row[data-client="dash-charts"][data-service="echo"]'
    wait_for(browser, f"document.querySelector('{row}')?.dataset.state === 'running'")
    browser.execute_script(WATCH_ROW, "dash-charts", "echo")
    browser.execute_script(f"document.querySelector('{row} button[data-action=restart]').click();")
    wait_for(browser, "window.__states.includes('restarting')")
    wait_for(browser, "window.__states[window.__states.length - 1] === 'running'", timeout=40)
    status = wait_for(browser, "document.getElementById('action-status').textContent.includes('requested') && "
                      "document.getElementById('action-status').textContent")
    assert status == "restart of dash-charts/echo requested"
    wait_for(browser, "[...document.querySelectorAll('#events .event')].some(e => "
             "e.querySelector('.kind').textContent === 'instance.restart' && "
             "e.querySelector('.where').textContent === 'dash-charts/echo')")
    after = bridge.wait_state("dash-charts", "echo", {"running"})
    assert instance_pid(bridge, "dash-charts", "echo") != pid  # a new process, not just a new label
    assert after["started_at"] != before["started_at"]


def test_rotate_shows_the_new_token_once_and_delete_asks_first(
    browser: Any, bridge: BridgeProcess, workspace: Path
) -> None:
    old = bridge.register("dash-doomed", workspace, ["echo"], wait=30)["token"]
    browser.get("about:blank")
    browser.get(f"{bridge.url}/dashboard#token={bridge.admin_token}")
    client_row = 'tr.client-row[data-client="dash-doomed"]'
    wait_for(browser, f"document.querySelector('{client_row}')")
    browser.execute_script(f"document.querySelector('{client_row} button[data-action=rotate]').click();")
    token = wait_for(browser, "document.getElementById('token-dialog').open && "
                     "document.getElementById('new-token').textContent")
    assert token != old and len(token) >= 32
    assert bridge.api("GET", "/clients/dash-doomed", token=token).status_code == 401  # a client token, not admin
    assert asyncio.run(_tools(bridge, "dash-doomed", token)) and not asyncio.run(_tools(bridge, "dash-doomed", old))
    browser.execute_script("document.getElementById('token-close').click();")
    assert browser.execute_script("return document.getElementById('new-token').textContent;") == ""  # shown once

    browser.execute_script(f"document.querySelector('{client_row} button[data-action=delete]').click();")
    wait_for(browser, "document.getElementById('delete-dialog').open")
    browser.execute_script("document.getElementById('delete-cancel').click();")
    assert bridge.api("GET", "/clients/dash-doomed").status_code == 200  # cancelled: nothing deleted
    browser.execute_script(f"document.querySelector('{client_row} button[data-action=delete]').click();")
    browser.execute_script("document.getElementById('delete-confirm').click();")
    wait_for(browser, f"!document.querySelector('{client_row}')", timeout=30)
    assert bridge.api("GET", "/clients/dash-doomed").status_code == 404
    kinds = bridge.api("GET", "/events", params={"client_id": "dash-doomed", "limit": 50}).json()
    assert {"client.token_rotated", "client.deleted"} <= {e["kind"] for e in kinds}


async def _tools(bridge: BridgeProcess, client_id: str, token: str) -> bool:
    try:
        async with mcp_client(bridge.mcp_url(client_id, "echo"), token) as client:
            return bool((await client.list_tools()).tools)
    except Exception:
        return False


# A foreign page (another origin) that knows the admin token tries three ways to act or read.
FOREIGN_ATTACK = """
const [bridge, token, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const out = {};
const url = `${bridge}/api/v1/clients/dash-charts/instances/echo/restart`;
fetch(url, {method: "POST", headers: {Authorization: `Bearer ${token}`}})
  .then(r => { out.cors = `answered ${r.status}`; }, e => { out.cors = `blocked: ${e}`; })
  .then(() => fetch(url, {method: "POST", mode: "no-cors"}))
  .then(() => { out.simple = "sent"; }, e => { out.simple = `blocked: ${e}`; })
  .then(() => new Promise(resolve => {
    const ws = new WebSocket(`${bridge.replace("http", "ws")}/dashboard/ws`);
    out.messages = 0;
    ws.onopen = () => ws.send(JSON.stringify({type: "auth", token}));
    ws.onmessage = () => { out.messages += 1; };
    ws.onclose = (e) => { out.close = e.code; resolve(); };
  }))
  .then(() => done(out));
"""


def test_a_foreign_origin_page_cannot_act_or_read(browser: Any, bridge: BridgeProcess, charted: dict[str, Any],
                                                   tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>elsewhere</title><p>another site</p>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bridge.wait_state("dash-charts", "echo", {"running"})
        restarts = len(_restart_events(bridge))
        pid = instance_pid(bridge, "dash-charts", "echo")
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        browser.set_script_timeout(30)
        out = browser.execute_async_script(FOREIGN_ATTACK, bridge.url, bridge.admin_token)
    finally:
        server.shutdown()
        server.server_close()
    assert out["cors"].startswith("blocked"), out  # the preflight finds no CORS grant: the POST is never sent
    assert out["simple"] == "sent", out  # a no-cors POST goes out (opaque), without the token; refused
    assert out["messages"] == 0 and out["close"] == 1006, out  # the upgrade was refused (403): no snapshot
    assert len(_restart_events(bridge)) == restarts
    assert instance_pid(bridge, "dash-charts", "echo") == pid


def _restart_events(bridge: BridgeProcess) -> list[dict[str, Any]]:
    events = bridge.api("GET", "/events", params={"client_id": "dash-charts", "limit": 1000}).json()
    return [e for e in events if e["kind"] == "instance.restart"]
