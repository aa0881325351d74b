"""The dashboard's routes of a real quality server (``python -m instances.quality`` with an instance key, as
the process runtime starts it): refused without the key or with a wrong one, and with it, the running job
while run_tests works, then the last run's summary and the saved HTML report."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from conftest import REPO_ROOT, free_port
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

KEY = "status-routes-test-key-0123456789"
HEADER = "X-Paradise-Instance-Key"
SLOW_TESTS = """\
import time


def test_slow_one():
    time.sleep(1.5)


def test_slow_two():
    time.sleep(1.5)


def test_fails():
    time.sleep(1.5)
    assert 1 + 1 == 3, "arithmetic"
"""


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workspace = tmp_path_factory.mktemp("status-ws")
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_slow.py").write_text(SLOW_TESTS)
    port = free_port()
    log = workspace.parent / "status-server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_CORE_"))}
    env["PARADISE_INSTANCE_KEY"] = KEY
    argv = [sys.executable, "-m", "instances.quality", "--port", str(port), "--workspace", str(workspace)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--profile", "quick"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(base + "/healthz", headers={HEADER: KEY}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        yield base, workspace
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.parametrize("path", ["/quality/status", "/quality/report.html"])
def test_routes_refuse_without_the_instance_key(keyed_server: tuple[str, Path], path: str) -> None:
    base, _ = keyed_server
    missing = httpx.get(base + path, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "instance_key_missing"
    wrong = httpx.get(base + path, headers={HEADER: "x" * 40}, timeout=10)
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "instance_key_invalid"


async def test_status_follows_a_run_and_serves_the_report(keyed_server: tuple[str, Path]) -> None:
    base, workspace = keyed_server
    keyed = {HEADER: KEY}
    async with httpx.AsyncClient(base_url=base, headers=keyed, timeout=10) as http:
        before = (await http.get("/quality/status")).json()
        assert before["running"] == [] and before["report_html"] is None
        assert (await http.get("/quality/report.html")).status_code == 404
        async with (
            httpx2.AsyncClient(headers=keyed, timeout=httpx2.Timeout(30, read=120)) as mcp_http,
            Client(streamable_http_client(base + "/mcp", http_client=mcp_http)) as client,
        ):
            # No progress callback: the registry must be fed though the client asked for no notifications.
            call = asyncio.create_task(client.call_tool("run_tests", {"coverage": False, "workers": 1}))
            seen = []
            while not call.done():
                status = (await http.get("/quality/status")).json()
                seen += status["running"]
                await asyncio.sleep(0.2)
            result = await call
            assert result.structured_content["counts"]["failed"] == 1
            assert any(job["tool"] == "run_tests" for job in seen), "the running job was never shown"
            assert any(job["progress"] > 0 and "pytest" in job["message"] for job in seen), seen[-3:]
            last = (await http.get("/quality/status")).json()
            assert last["running"] == []
            assert (last["last"]["tool"], last["last"]["failures"]) == ("run_tests", 1)
            assert last["last"]["failed"] == ["tests/test_slow.py::test_fails"]
            report = await client.call_tool("quality_report", {})
        html_name = report.structured_content["files"]["html"].rsplit("/", 1)[-1]
        status = (await http.get("/quality/status")).json()
        assert status["report_html"] == html_name and status["last_report"]["failures"] == 1
        page = await http.get("/quality/report.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text == (workspace / ".paradise" / "reports" / html_name).read_text()
