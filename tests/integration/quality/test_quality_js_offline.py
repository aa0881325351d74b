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
    from instances.quality.profiles import load_profiles
    from instances.quality.security import security_scan
    from instances.quality.workspace import Workspace
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


def test_npm_audit_offline_is_unavailable_not_clean(tmp_path: Path) -> None:
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
    assert npm["status"] == "unavailable"
    assert npm["reason"].startswith("the npm advisory service did not answer: ")
    assert "vulnerabilities" not in npm
    assert {"what": "npm-audit", "reason": npm["reason"]} in data["skipped"]
    assert data["status"] != "ok"
