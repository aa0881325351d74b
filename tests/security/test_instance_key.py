"""An instance's port answers only its bridge: a direct MCP initialize without the launch's key is 401, with a
wrong key 403, while the same client through the bridge works. Real bridges, real instances: quality and
Serena on the process runtime (under bubblewrap where it runs), quality on a real Docker engine.

The test reads the real key where only the host's owner can (the instance's /proc environ, the container's
config) to prove the instance accepts that key and nothing else, and that it shows up in no argv, no log,
no API answer, and not in the environment of the tenant's code.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bridge.mcp.protocol import ACCEPT_BOTH, INSTANCE_KEY_ENV, INSTANCE_KEY_HEADER, initialize_request
from tests.docker import conftest as docker_fixtures
from tests.helpers import (
    BridgeProcess,
    bridge_with_serena,
    instance_socket,
    listener_pid,
    mcp_client,
    serving,
    socket_request,
)

pytestmark = [pytest.mark.slow]

# The Docker session fixtures of tests/docker (a real engine, the images built), shared rather than copied.
engine = docker_fixtures.engine
images = docker_fixtures.images
WRONG_KEY = "not-the-key-" + "x" * 32
STALE_IMAGE_HINT = "an instance image older than instances/keyguard.py? rebuild: devops-paradise images build quality"


def direct_initialize(target: int | tuple[Path, int], key: str | None = None) -> httpx.Response:
    """An MCP initialize straight to the instance, not through the bridge: to its published port, as any local
    process (or a rebinding page) could, or to a sandboxed instance's Unix socket, as only its host's owner can."""
    headers = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}
    if key is not None:
        headers[INSTANCE_KEY_HEADER] = key
    body = initialize_request("attacker")
    if isinstance(target, tuple):  # (socket, port): the server inside still checks Host against its port
        sent = {**headers, "Host": f"127.0.0.1:{target[1]}"}
        return socket_request(target[0], "POST", "/mcp", sent, json.dumps(body).encode())
    return httpx.post(f"http://127.0.0.1:{target}/mcp", json=body, headers=headers, timeout=30)


def process_instance_key(port: int) -> str:
    """The key the bridge gave the process listening on ``port`` (its initial environment block)."""
    environ = psutil.Process(listener_pid(port)).environ()
    assert INSTANCE_KEY_ENV in environ, "the bridge gave this instance no key"
    return environ[INSTANCE_KEY_ENV]


def assert_the_port_refuses_all_but_the_key(port: int | tuple[Path, int], key: str) -> None:
    missing = direct_initialize(port)
    assert missing.status_code == 401, (missing.status_code, missing.text[:300], STALE_IMAGE_HINT)
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["error"]["code"] == "instance_key_missing"
    wrong = direct_initialize(port, WRONG_KEY)
    assert wrong.status_code == 403, (wrong.status_code, wrong.text[:300])
    assert set(wrong.json()["error"]) == {"code", "message"} and key not in wrong.text
    right = direct_initialize(port, key)
    assert right.status_code == 200 and '"result"' in right.text  # the key, and only the key, opens it


def assert_the_key_leaks_nowhere(bridge: BridgeProcess, client_id: str, key: str) -> None:
    assert key not in bridge.api("GET", f"/clients/{client_id}").text
    assert key not in bridge.api("GET", "/events", params={"client_id": client_id}).text
    for log in [bridge.log, *bridge.data_dir.glob("instances/**/*.log")]:
        assert key not in log.read_text(errors="replace"), f"the instance key is in {log}"
    for proc in psutil.process_iter(["cmdline"]):
        assert key not in " ".join(proc.info["cmdline"] or []), f"the instance key is in the argv of {proc.pid}"


def env_probe_workspace(root: Path) -> Path:
    """A workspace whose one test records whether the tenant's code can see the instance key."""
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_env.py").write_text(
        textwrap.dedent(
            f"""\
            import os
            import pathlib


            def test_records_the_environment():
                seen = pathlib.Path(__file__).with_name("seen.json")
                seen.write_text(repr(os.environ.get("{INSTANCE_KEY_ENV}")))
            """
        )
    )
    return root


# ---- process runtime -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    with serving(bridge_with_serena(tmp_path_factory.mktemp("key-bridge"))) as proc:
        yield proc


async def test_a_process_quality_instance_answers_only_its_bridge(key_bridge: BridgeProcess, tmp_path: Path) -> None:
    workspace = env_probe_workspace(tmp_path / "ws")
    created = key_bridge.register("key-quality", workspace, ["quality"], wait=60)
    assert created["instances"][0]["state"] == "running", created
    port = key_bridge.state("key-quality", "quality")["port"]
    key = process_instance_key(port)

    assert_the_port_refuses_all_but_the_key((instance_socket(key_bridge, "key-quality", "quality"), port), key)
    async with mcp_client(key_bridge.mcp_url("key-quality", "quality"), created["token"]) as client:
        tests = await client.call_tool("run_tests", {})
    assert tests.structured_content["counts"]["passed"] == 1, tests.content
    assert (workspace / "tests" / "seen.json").read_text() == "None"  # the tenant's code never sees the key
    assert_the_key_leaks_nowhere(key_bridge, "key-quality", key)


def test_the_instance_proves_its_key_without_showing_it(key_bridge: BridgeProcess) -> None:
    """The bridge's challenge (bridge/mcp/verify.py), answered by the real keyguard: HMAC of the launch's key,
    never the key itself, and no MCP for a request that carries only the challenge."""
    from bridge.mcp.verify import CHALLENGE_HEADER, PROOF_HEADER, proof

    key = process_instance_key(key_bridge.state("key-quality", "quality")["port"])
    port = key_bridge.state("key-quality", "quality")["port"]
    answer = socket_request(instance_socket(key_bridge, "key-quality", "quality"), "GET", "/mcp",
                            {"Host": f"127.0.0.1:{port}", CHALLENGE_HEADER: "nonce-4711"})  # fmt: skip
    assert answer.status_code == 204 and answer.headers[PROOF_HEADER] == proof(key, "nonce-4711")
    assert key not in answer.text and key not in str(answer.headers)


IMPOSTOR = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

seen = os.path.join(os.environ["PARADISE_WORKSPACE"], "seen.jsonl")

class Anything(BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with open(seen, "a") as out:
            out.write(json.dumps(dict(self.headers)) + "\n")
        body = b'{"jsonrpc": "2.0", "id": 1, "result": {}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_DELETE = answer

HTTPServer(("127.0.0.1", int(sys.argv[1])), Anything).serve_forever()
"""


def test_a_listener_that_cannot_prove_the_key_gets_no_key_and_no_request(tmp_path: Path) -> None:
    """A guarded service whose listener answers everything but holds no key (as a tenant's process that took
    the port would): an impostor event, the start fails, and no request it saw carried the key or MCP."""
    (tmp_path / "impostor.py").write_text(IMPOSTOR)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f'[services.guarded]\ncommand = ["{sys.executable}", "{tmp_path / "impostor.py"}", "{{port}}"]\n'
        'path = "/mcp"\ninstance_key = true\n'
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with serving(BridgeProcess(tmp_path / "data", env={"PARADISE_CATALOG": str(catalog)})) as bridge:
        body = {"client_id": "victim", "workspace": str(workspace), "services": ["guarded"]}
        resp = bridge.api("POST", "/clients", params={"wait": 20}, json=body)
        assert resp.status_code in (201, 503), resp.text
        state = bridge.wait_state("victim", "guarded", {"failed"}, timeout=30)
        assert state["state"] == "failed" and "could not prove" in state["last_error"], (state, state.get("last_log"))
        kinds = [e["kind"] for e in bridge.api("GET", "/events", params={"client_id": "victim"}).json()]
        assert "instance.impostor" in kinds
    requests = [json.loads(line) for line in (workspace / "seen.jsonl").read_text().splitlines()]
    assert requests, "the impostor was never challenged"
    for headers in requests:
        assert INSTANCE_KEY_HEADER.lower() not in {h.lower() for h in headers}
        assert "X-Paradise-Challenge" in headers


async def test_a_restart_changes_the_key_and_the_old_one_stops_working(key_bridge: BridgeProcess) -> None:
    port = key_bridge.state("key-quality", "quality")["port"]
    old_key = process_instance_key(port)
    assert key_bridge.api("POST", "/clients/key-quality/restart").status_code == 200
    state = key_bridge.wait_state("key-quality", "quality", {"running"}, timeout=60)
    assert state["state"] == "running", state
    new_key = process_instance_key(state["port"])
    assert new_key != old_key
    sandboxed = (instance_socket(key_bridge, "key-quality", "quality"), state["port"])
    assert direct_initialize(sandboxed, old_key).status_code == 403


@pytest.mark.serena
async def test_a_process_serena_instance_answers_only_its_bridge(key_bridge: BridgeProcess, tmp_path: Path) -> None:
    (tmp_path / "shapes").mkdir()
    (tmp_path / "shapes" / "__init__.py").write_text("class Circle:\n    pass\n")
    created = key_bridge.register("key-serena", tmp_path, ["serena"], wait=240)
    assert created["instances"][0]["state"] == "running", created  # the bridge's readiness call got in
    port = key_bridge.state("key-serena", "serena")["port"]
    pid = listener_pid(port)
    assert "guarded.py" in " ".join(psutil.Process(pid).cmdline())  # Serena itself, behind the launcher
    key = process_instance_key(port)

    assert_the_port_refuses_all_but_the_key((instance_socket(key_bridge, "key-serena", "serena"), port), key)
    async with mcp_client(key_bridge.mcp_url("key-serena", "serena"), created["token"]) as client:
        found = await client.call_tool("find_symbol", {"name_path_pattern": "Circle"})
    assert not found.is_error and [s["name_path"] for s in json.loads(found.content[0].text)] == ["Circle"]
    for child in psutil.Process(pid).children(recursive=True):  # the language servers Serena started
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            assert INSTANCE_KEY_ENV not in child.environ(), f"{child.name()} inherited the instance key"
    assert_the_key_leaks_nowhere(key_bridge, "key-serena", key)


# ---- Docker runtime --------------------------------------------------------------------------------------

DOCKER_CLIENT = "dk-key"


@pytest.fixture(scope="module")
def docker_key_bridge(engine: Any, images: dict[str, str]) -> Iterator[BridgeProcess]:
    work = Path(tempfile.mkdtemp(prefix="paradise-key-"))
    work.chmod(0o755)  # containers run as an unprivileged uid and must traverse it
    docker_fixtures.remove_managed(engine, {DOCKER_CLIENT})
    proc = BridgeProcess(
        work / "data",
        env={"PARADISE_RUNTIME": "docker", "PARADISE_READY_TIMEOUT": "180", "PARADISE_START_TIMEOUT": "120"},
    ).start()
    yield proc
    with contextlib.suppress(Exception):
        proc.api("DELETE", f"/clients/{DOCKER_CLIENT}")
    proc.kill(signal.SIGTERM)
    docker_fixtures.remove_managed(engine, {DOCKER_CLIENT})
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.docker
async def test_a_docker_quality_instance_answers_only_its_bridge(docker_key_bridge: BridgeProcess, engine) -> None:
    workspace = docker_fixtures.owned_workspace(docker_key_bridge.data_dir.parent / "ws", "Vault")
    created = docker_key_bridge.register(DOCKER_CLIENT, workspace, ["quality"], wait=120)
    assert created["instances"][0]["state"] == "running", created
    port = docker_key_bridge.state(DOCKER_CLIENT, "quality")["port"]
    container = engine.containers.get(f"paradise-{DOCKER_CLIENT}-quality")
    env = dict(item.partition("=")[::2] for item in container.attrs["Config"]["Env"])
    key = env[INSTANCE_KEY_ENV]

    assert_the_port_refuses_all_but_the_key(port, key)  # the published port, as any local process sees it
    async with mcp_client(docker_key_bridge.mcp_url(DOCKER_CLIENT, "quality"), created["token"]) as client:
        tools = await client.list_tools()
    assert "run_tests" in {tool.name for tool in tools.tools}
    assert key not in json.dumps(container.attrs["Args"]) and key not in json.dumps(container.attrs["Config"]["Cmd"])
    assert_the_key_leaks_nowhere(docker_key_bridge, DOCKER_CLIENT, key)
