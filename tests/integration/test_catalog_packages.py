"""Real MCP servers from the registries, per client, through a running bridge on the process runtime.

``devops-paradise catalog add`` installs each package for real (npm and PyPI, pinned versions), the bridge
that is already running picks the services up at the next registration, and each client gets its own
instance behind the stdio adapter: ``@modelcontextprotocol/server-everything`` (tools, a tool streaming
progress, resources, prompts), ``@modelcontextprotocol/server-filesystem`` scoped to the client's workspace
(another client's file stays out of reach) and ``mcp-server-git`` on the client's own repository. The instance
serves offline: the packages were installed beforehand, and the instance has no network of its own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from bridge.catalog.packages import Package
from bridge.cli.catalog import catalog_lock, read_entries, write_entries
from tests.helpers import ROOT, BridgeProcess, mcp_client, serving

EVERYTHING = "npm:@modelcontextprotocol/server-everything@2026.8.31"
FILESYSTEM = "npm:@modelcontextprotocol/server-filesystem@2026.8.31"
GIT = "pypi:mcp-server-git==2026.10.19"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npm") is None or shutil.which("git") is None, reason="needs npm and git"),
]


def catalog_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PARADISE_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("PARADISE_CATALOG", None)
    return subprocess.run([sys.executable, "-m", "bridge", "catalog", *args], env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)


def text_of(result) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def git_repo(path: Path, message: str) -> Path:
    path.mkdir(parents=True)
    (path / "README.md").write_text(f"# {path.name}\n")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "README.md"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], cwd=path, check=True)
    return path


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    base = tmp_path_factory.mktemp("packages")
    proc = BridgeProcess(base / "data", env={"PARADISE_READY_TIMEOUT": "90", "PARADISE_START_TIMEOUT": "60"})
    proc.env.pop("PARADISE_CATALOG", None)
    adds = (("everything", EVERYTHING, ["--arg=stdio"]), ("files", FILESYSTEM, ["--arg={workspace}"]),
            ("git", GIT, ["--arg=--repository", "--arg={workspace}"]))
    with serving(proc), ThreadPoolExecutor(len(adds)) as pool:  # running before the packages exist
        # All three at once, as three admins might: each install is its own, the catalog file keeps all three.
        done = list(pool.map(lambda add: catalog_cli(proc.data_dir, "add", add[0], add[1], *add[2]), adds))
        for (name, package, _), added in zip(adds, done, strict=True):
            assert added.returncode == 0, added.stdout + added.stderr
            assert f"added service {name} ({package}, stdio)" in added.stdout
        yield proc


@pytest.fixture(scope="module")
def clients(bridge: BridgeProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("tenants")
    made = {}
    for name in ("alice", "bob"):
        workspace = git_repo(base / name, f"{name}'s first commit")
        (workspace / "secret.txt").write_text(f"{name}'s secret\n")
        made[name] = {**bridge.register(name, workspace, ["everything", "files", "git"], wait=90),
                      "path": workspace}
        for service in ("everything", "files", "git"):
            state = bridge.wait_state(name, service, {"running", "failed"}, timeout=60)
            assert state["state"] == "running", (state, state.get("last_log"))
    return made


async def _everything(bridge: BridgeProcess, token: str, mode: str) -> None:
    async with mcp_client(bridge.mcp_url("alice", "everything"), token, mode=mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= tools
        assert text_of(await client.call_tool("echo", {"message": "through the bridge"})) == \
            "Echo: through the bridge"
        steps: list[float] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            steps.append(done)

        result = await client.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 3},
                                        progress_callback=progress)
        assert not result.is_error and steps == [1, 2, 3], (text_of(result), steps)
        resources = (await client.list_resources()).resources
        first = await client.read_resource(resources[0].uri)
        assert first.contents and str(first.contents[0].uri) == str(resources[0].uri)
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "simple-prompt" in prompts
        prompt = await client.get_prompt("simple-prompt")
        assert prompt.messages and prompt.messages[0].role == "user"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_server_everything_tools_progress_resources_prompts(bridge, clients, mode) -> None:
    asyncio.run(_everything(bridge, clients["alice"]["token"], mode))


async def _read(bridge: BridgeProcess, token: str, client: str, path: Path) -> tuple[bool, str]:
    async with mcp_client(bridge.mcp_url(client, "files"), token) as session:
        result = await session.call_tool("read_text_file", {"path": str(path)})
    return bool(result.is_error), text_of(result)


def test_server_filesystem_reads_its_own_workspace_and_not_another(bridge, clients) -> None:
    alice, bob = clients["alice"], clients["bob"]
    failed, text = asyncio.run(_read(bridge, alice["token"], "alice", alice["path"] / "secret.txt"))
    assert not failed and text == "alice's secret\n"
    failed, text = asyncio.run(_read(bridge, alice["token"], "alice", bob["path"] / "secret.txt"))
    assert failed and "bob's secret" not in text, text
    assert "denied" in text.lower() or "outside" in text.lower(), text


async def _git_log(bridge: BridgeProcess, token: str, client: str, repo: Path) -> str:
    async with mcp_client(bridge.mcp_url(client, "git"), token) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"git_status", "git_log"} <= tools
        result = await session.call_tool("git_log", {"repo_path": str(repo)})
    assert not result.is_error, text_of(result)
    return text_of(result)


def test_mcp_server_git_on_the_clients_repository(bridge, clients) -> None:
    for name in ("alice", "bob"):
        log = asyncio.run(_git_log(bridge, clients[name]["token"], name, clients[name]["path"]))
        assert f"{name}'s first commit" in log
        other = "bob" if name == "alice" else "alice"
        assert f"{other}'s first commit" not in log


def stdio_children(data_dir: Path, client: str) -> list[psutil.Process]:
    """The stdio server processes (node) under the client's ``everything`` adapter."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "server-everything" in cmdline and str(data_dir) in cmdline and "stdio_adapter" not in cmdline:
            try:
                if proc.environ().get("PARADISE_CLIENT") == client:
                    found.append(proc)
            except psutil.Error:
                continue
    return found


def test_a_dead_stdio_server_is_healed_like_any_instance(bridge, clients) -> None:
    children = stdio_children(bridge.data_dir, "bob")
    assert len(children) == 1, children
    before = bridge.state("bob", "everything")["restarts"]
    children[0].kill()
    children[0].wait(10)
    # The adapter exits when its child stops answering; the bridge restarts the instance, and the next
    # request is held until it is back.
    deadline = 60.0
    state = bridge.wait_state("bob", "everything", {"restarting", "starting", "failed"}, timeout=deadline)
    assert state["state"] != "failed", state
    state = bridge.wait_state("bob", "everything", {"running", "failed"}, timeout=deadline)
    assert state["state"] == "running" and state["restarts"] > before, state

    async def echo() -> str:
        async with mcp_client(bridge.mcp_url("bob", "everything"), clients["bob"]["token"]) as client:
            return text_of(await client.call_tool("echo", {"message": "again"}))

    assert asyncio.run(echo()) == "Echo: again"


def test_catalog_list_and_rm(bridge, clients) -> None:
    listed = catalog_cli(bridge.data_dir, "list")
    assert listed.returncode == 0, listed.stderr
    for name, package in (("everything", EVERYTHING), ("files", FILESYSTEM), ("git", GIT)):
        row = next(line for line in listed.stdout.splitlines() if line.startswith(name + " "))
        assert package in row and row.split()[-2] == "yes", row  # INSTALLED (then IMAGE)
    env = {"PARADISE_URL": bridge.url, "PARADISE_ADMIN_TOKEN": bridge.admin_token}
    os.environ.update(env)
    try:
        refused = catalog_cli(bridge.data_dir, "rm", "git")
    finally:
        for key in env:
            os.environ.pop(key)
    assert refused.returncode == 1 and "alice, bob still run git" in refused.stderr, refused.stderr


def test_a_command_of_ones_own_naming_a_node_modules_bin_script(bridge, clients, tmp_path_factory) -> None:
    """Issue 25: ``[node, /srv/x/node_modules/.bin/SERVER, stdio]`` died in the sandbox (the bin, a symlink, was
    mounted alone, its package's files absent). The package root of a named program is mounted whole now."""
    installed = bridge.data_dir / "packages" / Package.parse(EVERYTHING).slug
    srv = tmp_path_factory.mktemp("srv") / "everything"
    shutil.copytree(installed, srv, symlinks=True)  # a project of one's own, outside the data dir
    program = srv / "node_modules" / ".bin" / "mcp-server-everything"
    assert program.is_symlink()
    path = bridge.data_dir / "catalog.toml"
    with catalog_lock(path):
        entries = read_entries(path)
        entries["mine"] = {"command": [shutil.which("node"), str(program), "stdio"], "transport": "stdio"}
        write_entries(path, entries)
    workspace = tmp_path_factory.mktemp("dave")
    token = bridge.register("dave", workspace, ["mine"], wait=90)["token"]
    state = bridge.wait_state("dave", "mine", {"running", "failed"}, timeout=60)
    assert state["state"] == "running", (state.get("last_error"), state.get("last_log"))

    async def echo() -> str:
        async with mcp_client(bridge.mcp_url("dave", "mine"), token) as client:
            return text_of(await client.call_tool("echo", {"message": "mine"}))

    assert asyncio.run(echo()) == "Echo: mine"
    bridge.api("DELETE", "/clients/dave")


def test_catalog_rm_force_is_followed_by_the_running_bridge(bridge, clients) -> None:
    """After every other test (it removes ``git``): the running bridge retires the instances, the route answers a
    JSON 404 naming the removal, the clients keep their other services, and the install goes."""
    env = {"PARADISE_URL": bridge.url, "PARADISE_ADMIN_TOKEN": bridge.admin_token}
    os.environ.update(env)
    try:
        removed = catalog_cli(bridge.data_dir, "rm", "git", "--force")
    finally:
        for key in env:
            os.environ.pop(key)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "the bridge stopped the instances of alice, bob" in removed.stdout, removed.stdout
    assert not (bridge.data_dir / "packages" / Package.parse(GIT).slug).exists()
    for name in ("alice", "bob"):
        services = {i["service"]: i["state"] for i in bridge.api("GET", f"/clients/{name}").json()["instances"]}
        assert services == {"everything": "running", "files": "running"}, services
    assert not [p for p in psutil.process_iter(["cmdline"]) if "mcp-server-git" in " ".join(p.info["cmdline"] or [])
                and str(bridge.data_dir) in " ".join(p.info["cmdline"] or [])]
    answer = httpx.post(bridge.mcp_url("alice", "git"), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                        headers={"Authorization": f"Bearer {clients['alice']['token']}",
                                 "Accept": "application/json, text/event-stream"}, timeout=10)
    assert answer.status_code == 404, answer.text
    assert "removed from the bridge's catalog" in answer.json()["error"]["message"], answer.text
    refused = bridge.api("POST", "/clients", json={"client_id": "carol", "workspace": str(clients["alice"]["path"]),
                                                   "services": ["git"]})
    assert refused.status_code == 422 and "unknown service(s): git" in refused.text, refused.text
    events = bridge.api("GET", "/events", params={"client_id": "alice"}).json()
    assert any(e["kind"] == "instance.retired" and e.get("service") == "git" for e in events), events
