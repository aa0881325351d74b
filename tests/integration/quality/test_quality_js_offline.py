"""npm audit with no network at all (a fresh network namespace, as in a `--network none` container):
the dependencies are reported as NOT audited, quickly, never as clean."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from js_workspaces import require_node_toolchain
from quality_workspaces import write

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from instances.quality.core.profiles import load_profiles
    from instances.quality.checks.security import security_scan
    from instances.quality.core.workspace import Workspace
    result = asyncio.run(security_scan(Workspace.open(sys.argv[1]), load_profiles()["comprehensive"]))
    print(json.dumps(result))
    """
)


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    message = "cannot create a network namespace (unshare -n) here"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_npm_audit_offline_is_an_error_not_clean(tmp_path: Path) -> None:
    require_node_toolchain()
    prefix = _offline_prefix()
    lock = {
        "name": "offline",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "offline", "version": "1.0.0", "dependencies": {"left-pad": "1.3.0"}},
            "node_modules/left-pad": {"version": "1.3.0"},
        },
    }
    write(
        tmp_path,
        {
            "package.json": json.dumps({"name": "offline", "version": "1.0.0", "dependencies": {"left-pad": "1.3.0"}}),
            "package-lock.json": json.dumps(lock),
        },
    )
    started = time.monotonic()
    done = subprocess.run(
        [*prefix, sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert time.monotonic() - started < 60
    data = json.loads(done.stdout.strip().splitlines()[-1])
    npm = data["scanners"]["npm-audit"]
    assert npm["status"] == "not_run"
    assert npm["error"]["message"].startswith("the npm advisory service did not answer: ")
    assert "vulnerabilities" not in npm
    assert {"what": "npm-audit", **npm["error"]} in data["errors"]
    assert data["status"] == "error"  # the only check this workspace needs could not run: not "skipped"


async def test_with_no_egress_the_audits_say_so_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An instance started with egress "none" does not wait on the network to learn it has none."""
    from instances.quality.checks.security import security_scan
    from instances.quality.core.profiles import load_profiles
    from instances.quality.core.workspace import Workspace

    require_node_toolchain()
    monkeypatch.setenv("PARADISE_INSTANCE_EGRESS", "none")
    write(
        tmp_path,
        {"requirements.txt": "requests==2.0.0\n", "package.json": "{}", "package-lock.json": '{"lockfileVersion": 3}'},
    )
    data = await security_scan(Workspace.open(tmp_path), load_profiles()["comprehensive"], include_code=False)
    assert data["status"] == "error"
    for name in ("pip-audit", "npm-audit"):
        error = data["scanners"][name]["error"]
        assert "PARADISE_INSTANCE_EGRESS=none" in error["message"] and "registries" in error["fix"]
        assert data["scanners"][name]["status"] == "not_run"


async def test_the_report_score_says_what_it_could_not_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from instances.quality.core.profiles import load_profiles
    from instances.quality.core.workspace import Workspace
    from instances.quality.reports.reports import quality_report
    from instances.quality.server.summaries import summarize

    require_node_toolchain()
    monkeypatch.setenv("PARADISE_INSTANCE_EGRESS", "none")
    toml = '[profiles.deps]\njavascript = true\ntools = ["dependencies"]\n'
    profiles = write(tmp_path / "conf", {"profiles.toml": toml})
    ws = write(tmp_path / "ws", {"package.json": "{}", "package-lock.json": '{"lockfileVersion": 3}'})
    profile = load_profiles(profiles / "profiles.toml")["deps"]
    data = await quality_report(Workspace.open(ws), profile)
    assert data["status"] == "incomplete"
    [missing] = data["score"]["not_measured"]
    assert (missing["step"], missing["component"]) == ("dependencies", "security")
    assert "no network" in missing["reason"] and missing["fix"]
    assert "NOT measured" in summarize("quality_report", data)
