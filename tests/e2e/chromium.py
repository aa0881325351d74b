"""Headless Chromium for the dashboard's browser tests: the driver fixture, waiting on the page, screenshots.

The browser tests need Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Without
them they are skipped with a message, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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



def need_browser() -> None:
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
    need_browser()
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
    raise AssertionError(f"timed out waiting for {condition}: page says {status(driver)!r}")


def status(driver: Any) -> str:
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


def screenshot(driver: Any, tmp_path: Path, name: str = "dashboard.png") -> None:
    path = tmp_path / name
    assert driver.save_screenshot(str(path)), "no screenshot"
    assert path.stat().st_size > 10_000
    with contextlib.suppress(OSError):
        shutil.copy(path, f"/tmp/{name}")  # a fixed place to look at it after a run
