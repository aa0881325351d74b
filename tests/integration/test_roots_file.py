"""A bridge that refuses a project outside its roots lets it in once ``devops-paradise roots add`` (what setup
does for its workspace) names it: no restart, and the refusal itself says which command and setting do that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, fixture_bridge, serving


def test_roots_add_lets_a_running_bridge_register_the_project(tmp_path: Path) -> None:
    (tmp_path / "bridge").mkdir()
    proc = fixture_bridge(tmp_path / "bridge")
    proc.env.pop("PARADISE_WORKSPACE_ROOTS", None)  # the default: the home(s) only; the project is elsewhere
    proc.env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    shop = tmp_path / "srv" / "shop"
    shop.mkdir(parents=True)
    body = {"client_id": "shop", "workspace": str(shop), "services": ["echo"]}
    with serving(proc):
        refused = proc.api("POST", "/clients", json=body)
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]["message"]
        assert "outside the workspace roots" in message
        assert f"devops-paradise roots add {shop}" in message and "PARADISE_WORKSPACE_ROOTS" in message

        env = {k: v for k, v in os.environ.items() if k != "PARADISE_WORKSPACE_ROOTS"}
        added = subprocess.run([sys.executable, "-m", "bridge", "roots", "add", str(shop)], capture_output=True,
                               text=True, timeout=60, env={**env, "PARADISE_DATA_DIR": str(proc.data_dir),
                                                           "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)})
        assert added.returncode == 0 and added.stdout.strip() == f"added {shop} to the workspace roots", added

        accepted = proc.api("POST", "/clients", json=body)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["workspace"] == str(shop)
        shared = proc.api("POST", "/clients", json={**body, "client_id": "tmp", "workspace": str(tmp_path)})
        assert shared.status_code == 422  # the parent of the added root (which holds the data dir) stays out
