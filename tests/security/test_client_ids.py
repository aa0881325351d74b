"""Client ids are matched as a whole: a trailing newline (regex ``$``) or any other stray character is a 422."""

from __future__ import annotations

import os
import subprocess

import httpx
import pytest

from bridge.models import CLIENT_ID, ClientCreate
from tests.helpers import PYTHON, ROOT
from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess  # the bridge in-process (tests/inprocess/); the CLI a real process
BAD_IDS = ["alice\n", "alice\r\n", "\nalice", "alice ", "Alice", "-alice", "a" * 41, "a/b", "a\x00b", "ali.ce", ""]


@pytest.mark.parametrize("client_id", BAD_IDS)
def test_the_pattern_is_a_full_match(client_id: str) -> None:
    assert CLIENT_ID.fullmatch(client_id) is None
    with pytest.raises(ValueError, match="client_id must match"):
        ClientCreate(client_id=client_id, workspace="/srv/x")


@pytest.mark.parametrize("client_id", BAD_IDS)
def test_the_api_refuses_it_with_422(bridge: InProcessBridge, workspace, client_id: str) -> None:
    resp = bridge.api("POST", "/clients", json={"client_id": client_id, "workspace": str(workspace)})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid" and "client_id must match" in error["message"]
    assert all(c["client_id"].strip() == c["client_id"] for c in bridge.api("GET", "/clients").json())
    assert not list((bridge.data_dir / "instances").glob("alice*"))


def test_the_longest_valid_id_is_accepted(bridge: InProcessBridge, workspace) -> None:
    client_id = "a" + "-9" * 19 + "z"  # 40 characters
    assert bridge.register(client_id, workspace, ["echo"], wait=0)["client_id"] == client_id
    assert bridge.api("DELETE", f"/clients/{client_id}").status_code == 204


def test_a_newline_in_the_mcp_path_is_a_json_error(bridge: InProcessBridge) -> None:
    resp = httpx.post(bridge.url + "/c/alice%0A/echo/mcp", json={}, headers={"Authorization": "Bearer x"}, timeout=10)
    assert resp.status_code in (401, 404) and "error" in resp.json()


@pytest.mark.parametrize("argv", [["client", "add", "alice\n", "--wait", "0"], ["client", "show", "alice\n"],
                                  ["mcp-config", "alice\n"], ["check", "bob\n"]])
def test_the_cli_refuses_it_before_calling_the_bridge(bridge: InProcessBridge, workspace, argv: list[str]) -> None:
    env = {**os.environ, "PARADISE_URL": bridge.url, "PARADISE_ADMIN_TOKEN": bridge.admin_token}
    if argv[:2] == ["client", "add"]:
        argv = [*argv, "--workspace", str(workspace)]
    done = subprocess.run([PYTHON, "-m", "bridge", *argv], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "client_id must match" in done.stderr, done.stderr
    assert bridge.api("GET", "/clients/alice").status_code == 404
