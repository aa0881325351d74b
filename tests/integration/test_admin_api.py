"""The admin API over the whole bridge in-process (tests/inprocess/, real MCP servers behind it): every bad input
is a JSON error, and nothing is left half-made. Start-up refusals need a real process: test_admin_api_startup."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess


def assert_nothing_left(bridge: InProcessBridge, client_id: str) -> None:
    assert bridge.api("GET", f"/clients/{client_id}").status_code == 404
    assert all(lease["client_id"] != client_id for lease in bridge.api("GET", "/ports").json())
    assert not (bridge.data_dir / "instances" / client_id).exists()


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"client_id": "Bad_Name", "workspace": "/tmp"}, 422, "invalid", "client_id must match"),
        ({"client_id": "-dash", "workspace": "/tmp"}, 422, "invalid", "client_id must match"),
        ({"client_id": "x" * 41, "workspace": "/tmp"}, 422, "invalid", "client_id must match"),
        ({"client_id": "nows"}, 422, "invalid", "workspace"),
        ({"client_id": "gone", "workspace": "/definitely/not/here"}, 422, "invalid", "does not exist"),
        ({"client_id": "relative", "workspace": "some/dir"}, 422, "invalid", "absolute path"),
        ({"client_id": "unk", "workspace": "/tmp", "services": ["nope"]}, 422, "invalid", "unknown service"),
        ({"client_id": "empty", "workspace": "/tmp", "services": []}, 422, "invalid", "non-empty"),
    ],
)
def test_bad_registrations(bridge: InProcessBridge, body: dict, status: int, code: str, words: str) -> None:
    resp = bridge.api("POST", "/clients", json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and words in error["message"]
    if isinstance(body.get("client_id"), str) and len(body["client_id"]) <= 40:
        assert_nothing_left(bridge, body["client_id"])


def test_workspace_that_is_a_file(bridge: InProcessBridge, tmp_path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    resp = bridge.api("POST", "/clients", json={"client_id": "filews", "workspace": str(target)})
    assert resp.status_code == 422 and "not a directory" in resp.json()["error"]["message"]
    assert_nothing_left(bridge, "filews")


def test_duplicate_client_is_409_and_keeps_the_first(bridge: InProcessBridge, workspace) -> None:
    first = bridge.register("twin", workspace, ["echo"])
    resp = bridge.api("POST", "/clients", json={"client_id": "twin", "workspace": str(workspace)})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "conflict"
    ports = [lease["port"] for lease in bridge.api("GET", "/ports").json() if lease["client_id"] == "twin"]
    assert ports == [first["instances"][0]["port"]]
    assert bridge.api("DELETE", "/clients/twin").status_code == 204
    assert bridge.api("DELETE", "/clients/twin").status_code == 204  # idempotent
    assert_nothing_left(bridge, "twin")


def test_malformed_and_oversized_bodies(bridge: InProcessBridge) -> None:
    headers = {"Content-Type": "application/json"}
    bad = bridge.api("POST", "/clients", content=b"{not json", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
    array = bridge.api("POST", "/clients", content=b"[1, 2]", headers=headers)
    assert array.status_code == 400
    huge = bridge.api("POST", "/clients", content=b'{"a": "' + b"x" * (9 * 1024 * 1024) + b'"}', headers=headers)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"


def test_admin_token_is_required(bridge: InProcessBridge) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {bridge.admin_token}"}):
        resp = httpx.get(bridge.url + "/api/v1/clients", headers=headers)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
    assert httpx.get(bridge.url + "/healthz").status_code == 200


def test_unknown_routes_and_methods_are_json(bridge: InProcessBridge) -> None:
    missing = bridge.api("GET", "/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert bridge.api("GET", "/clients/nobody").status_code == 404
    assert bridge.api("POST", "/clients/nobody/restart").status_code == 404
    assert bridge.api("POST", "/clients/nobody/token").status_code == 404
    wrong = bridge.api("PUT", "/clients")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    events = bridge.api("GET", "/events", params={"limit": "many"})
    assert events.status_code == 422


def test_token_rotation_and_mcp_config(bridge: InProcessBridge, workspace) -> None:
    created = bridge.register("rotor", workspace, ["echo"])
    config = bridge.api("GET", "/clients/rotor/mcp-config").json()
    entry = config["mcpServers"]["paradise-echo"]
    assert entry == {
        "type": "http",
        "url": f"{bridge.url}/c/rotor/echo/mcp",
        "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"},
    }
    rotated = bridge.api("POST", "/clients/rotor/token").json()
    url = bridge.mcp_url("rotor", "echo")
    init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    old = httpx.post(url, json=init, headers={"Authorization": f"Bearer {created['token']}"})
    assert old.status_code == 401
    new = httpx.post(url, json=init, headers={"Authorization": f"Bearer {rotated['token']}"})
    assert new.status_code != 401
    restarted = bridge.api("POST", "/clients/rotor/restart")
    assert restarted.status_code == 200
    assert bridge.wait_state("rotor", "echo", {"running"})["state"] == "running"
    bridge.api("DELETE", "/clients/rotor")


def test_a_port_taken_by_another_program_is_skipped(bridge: InProcessBridge, workspace) -> None:
    used = {lease["port"] for lease in bridge.api("GET", "/ports").json()}
    squatted = next(p for p in bridge.pool if p not in used)
    with socket.create_server(("127.0.0.1", squatted)):
        created = bridge.register("dodger", workspace, ["echo"])
    assert created["instances"][0]["port"] != squatted
    events = bridge.api("GET", "/events").json()
    assert any(e["kind"] == "port.conflict" and str(squatted) in e["message"] for e in events)
    bridge.api("DELETE", "/clients/dodger")


def test_tokens_are_stored_hashed(bridge: InProcessBridge, workspace) -> None:
    created = bridge.register("hashed", workspace, ["echo"])
    database = (bridge.data_dir / "paradise.db").read_bytes()
    assert created["token"].encode() not in database
    log = bridge.log.read_text()
    assert created["token"] not in log and bridge.admin_token not in log
    bridge.api("DELETE", "/clients/hashed")
