"""The CLI reaches a running bridge with nothing but its data dir: the bridge records where it listens."""

from __future__ import annotations

import json
import os
import subprocess

from tests.helpers import PYTHON, ROOT, BridgeProcess


def test_client_list_with_only_the_data_dir(bridge: BridgeProcess) -> None:
    record = json.loads((bridge.data_dir / "bridge.json").read_text())
    assert record["url"] == bridge.url
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADISE_")}
    env |= {"PARADISE_DATA_DIR": str(bridge.data_dir), "PARADISE_ADMIN_TOKEN": bridge.admin_token}
    done = subprocess.run(
        [PYTHON, "-m", "bridge", "client", "list", "--json"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
