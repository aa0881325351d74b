"""The dashboard's pictures and actions in headless Chromium, on a real bridge with real instances: each
instance's last hour drawn from real MCP traffic, a client's recorded quality runs, restart / rotate / delete
clicked on the page, and a page of another origin that has the admin token failing to act or read."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chromium import WATCH_ROW, browser, screenshot, wait_for
from tests.helpers import BridgeProcess, instance_pid, mcp_client

__all__ = ["browser"]  # the driver fixture, one per module

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
    screenshot(browser, tmp_path, "dashboard-charts.png")


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
    wanted, seen = {"client.token_rotated", "client.deleted"}, set()
    for _ in range(50):  # the event is recorded as the delete finishes, a moment after the 404 can be seen
        events = bridge.api("GET", "/events", params={"client_id": "dash-doomed", "limit": 50}).json()
        if wanted <= (seen := {e["kind"] for e in events}):
            break
        time.sleep(0.1)
    assert wanted <= seen, seen


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
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
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


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:  # the foreign site's access log is not the test's output
        pass


def _restart_events(bridge: BridgeProcess) -> list[dict[str, Any]]:
    events = bridge.api("GET", "/events", params={"client_id": "dash-charts", "limit": 1000}).json()
    return [e for e in events if e["kind"] == "instance.restart"]
