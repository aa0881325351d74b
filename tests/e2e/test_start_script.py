"""``start-devops-paradise.sh`` (the thin wrapper) and ``devops-paradise setup`` behind it, run the way a new
user runs them, on the process runtime, without Claude Code on PATH (tests/e2e/test_claude_code.py has it).

A temporary HOME, a copy of the working tree (uncommitted work included; no .venv, .git or caches), a
workspace with a Python class in it, the bridge on a free loopback port with its own free port block.
To stay fast the script reuses this test run's virtualenv (``PARADISE_VENV``: nothing is installed into
it, the copy's code comes first on PYTHONPATH) and the cached Serena virtualenv (``PARADISE_SERENA_VENV``).
Every process the script starts is stopped at the end, also when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bridge.host.serena_install import install_serena
from tests.docker.conftest import unavailable
from tests.helpers import free_block, serena_venv_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_NAME = "start-devops-paradise.sh"
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", ".pytest_cache", ".ruff_cache", "__pycache__", "*.egg-info", ".paradise", ".mcp.json*",
    "node_modules",
)
RUN_TIMEOUT = 600

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@dataclass
class Setup:
    """One new user: a home, a copy of the checkout, a workspace, ports, and the environment to run with."""

    root: Path
    client: str = "e2e-user"
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    # Where things are, all below root; set once from root and client.
    home: Path = field(init=False)
    repo: Path = field(init=False)
    workspace: Path = field(init=False)
    data_dir: Path = field(init=False)
    token_file: Path = field(init=False)
    mcp_json: Path = field(init=False)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.repo = self.root / "checkout"
        self.workspace = self.root / "my project"
        self.data_dir = self.home / ".devops-paradise"
        self.token_file = self.data_dir / "tokens" / self.client
        self.mcp_json = self.workspace / ".mcp.json"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.repo / SCRIPT_NAME), *args], cwd=self.workspace, env=env or self.env,
            capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL,
        )

    def admin(self, path: str) -> httpx.Response:
        token = (self.data_dir / "admin-token").read_text().strip()
        return httpx.get(f"http://127.0.0.1:{self.port}/api/v1{path}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)


def path_without_claude() -> str:
    """PATH less every directory holding a ``claude`` command (CI puts the real one on PATH)."""
    entries = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(e for e in entries if e and not (Path(e) / "claude").exists())


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any PARADISE_* setting of the outer world, plus a fresh HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARADISE_") and k != "PYTHONPATH"}
    return {**env, "HOME": str(home), "PATH": path_without_claude(), **extra}


def new_user(root: Path, client: str = "e2e-user", pool: int = 10) -> Setup:
    setup = Setup(root=root, client=client)
    shutil.copytree(ROOT, setup.repo, ignore=COPY_IGNORE)
    setup.home.mkdir(parents=True)
    package = setup.workspace / "inventory"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(
        "class Warehouse:\n    \"\"\"Where the boxes are.\"\"\"\n\n"
        "    def count(self) -> int:\n        return 42\n"
    )
    first = free_block(pool + 1)
    setup.port = first
    setup.env = user_env(
        setup.home,
        PARADISE_VENV=sys.prefix,
        PARADISE_SERENA_VENV=str(serena_venv_path()),
        PARADISE_PORT_RANGE=f"{first + 1}-{first + pool}",
        PARADISE_STOP_GRACE="2",
        PARADISE_WORKSPACE_ROOTS=str(root),  # the workspace lies in the test's temp dir, not the real home
    )
    return setup


def leftovers(root: Path, client: str) -> list[psutil.Process]:
    """Processes this test made: the temp dir (as a whole path, so ``.../claude1`` never matches another run's
    ``.../claude10``) in their command line or environment (HOME, PARADISE_DATA_DIR, PYTHONPATH, an instance's
    PARADISE_WORKSPACE). The client id alone is not enough: another run (another engineer's) may use it too."""
    mine = (str(root) + os.sep, str(root) + " ")
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            texts = [" ".join(proc.info["cmdline"] or []) + " ", *(value + os.sep for value in proc.environ().values())]
            if any(marker in text for text in texts for marker in mine):
                found.append(proc)
    return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def clean_up(setup: Setup) -> None:
    with contextlib.suppress(Exception):
        setup.run("--stop")
    for proc in leftovers(setup.root, setup.client):
        with contextlib.suppress(psutil.Error):
            proc.kill()


async def find_symbol_with_file_config(mcp_json: Path, token: str, name: str) -> list[dict]:
    """Exactly what Claude Code does with .mcp.json: its URL, its headers with ${VAR} from the environment."""
    server = json.loads(mcp_json.read_text())["mcpServers"]["paradise-serena"]
    environment = {"DEVOPS_PARADISE_TOKEN": token}
    headers = {k: string.Template(v).substitute(environment) for k, v in server["headers"].items()}
    assert server["type"] == "http"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        Client(streamable_http_client(server["url"], http_client=http)) as client,
    ):
        result = await asyncio.wait_for(client.call_tool("find_symbol", {"name_path_pattern": name}), 120)
    text = "".join(getattr(part, "text", "") for part in result.content)
    assert not result.is_error, text
    return json.loads(text)


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    install_serena(serena_venv_path(), progress=lambda line: print(f"[serena install] {line}"))
    setup = new_user(tmp_path_factory.mktemp("e2e"))
    try:
        yield setup
    finally:
        clean_up(setup)


# ---- the happy path, in order: first run, the config works, second run, stop --------------------------


@pytest.mark.serena
@pytest.mark.slow
def test_first_run_sets_everything_up_and_keeps_other_servers(user: Setup) -> None:
    other = {"mcpServers": {"my-own": {"command": "my-server", "args": ["--stdio"]}}, "keep": True}
    user.mcp_json.write_text(json.dumps(other))

    started = time.monotonic()
    done = user.run(user.client, str(user.workspace), "quick", "--runtime", "process", "--port", str(user.port))
    elapsed = time.monotonic() - started
    print(f"first run: {elapsed:.1f}s\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr

    config = json.loads(user.mcp_json.read_text())
    assert config["keep"] is True and config["mcpServers"]["my-own"] == other["mcpServers"]["my-own"]
    for service in ("serena", "quality"):
        entry = config["mcpServers"][f"paradise-{service}"]
        assert entry["type"] == "http"
        assert entry["url"] == f"http://127.0.0.1:{user.port}/c/{user.client}/{service}/mcp"
        assert entry["headers"] == {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"}
    backups = list(user.workspace.glob(".mcp.json.bak-*"))
    assert len(backups) == 1 and json.loads(backups[0].read_text()) == other

    assert stat.S_IMODE(user.token_file.stat().st_mode) == 0o600
    token = user.token_file.read_text().strip()
    assert len(token) >= 32 and token not in done.stdout + done.stderr
    assert token not in (user.data_dir / "setup.log").read_text()
    steps = [line.split("]")[0] for line in done.stdout.splitlines() if line.startswith("==> [")]
    assert steps == [f"==> [{n}/10" for n in range(1, 11)]
    assert "initialize ok" in done.stdout
    assert f'export DEVOPS_PARADISE_TOKEN="$(cat \'{user.token_file}\')"' in done.stdout
    # no claude on PATH: the exact lines to register at local scope, and the approval Claude Code will ask for
    assert "`claude` is not on PATH" in done.stdout and "asks you to approve the project's servers" in done.stdout
    assert (f"cd '{user.workspace}' && claude mcp add --scope local --transport http paradise-serena "
            f"http://127.0.0.1:{user.port}/c/{user.client}/serena/mcp --header \"Authorization: Bearer "
            f"$(cat '{user.token_file}')\"") in done.stdout
    assert f"Later: {user.repo / SCRIPT_NAME} --status | --stop | --remove {user.client}" in done.stdout


@pytest.mark.serena
@pytest.mark.slow
async def test_the_written_config_reaches_serena(user: Setup) -> None:
    token = user.token_file.read_text().strip()
    symbols = await find_symbol_with_file_config(user.mcp_json, token, "Warehouse")
    assert [(s["name_path"], s["kind"], s["relative_path"]) for s in symbols] == [
        ("Warehouse", "Class", "inventory/models.py")
    ]


@pytest.mark.serena
@pytest.mark.slow
async def test_second_run_is_idempotent(user: Setup) -> None:
    before = user.admin(f"/clients/{user.client}").json()
    token_stat = user.token_file.stat()
    token = user.token_file.read_text()
    config = user.mcp_json.read_text()

    started = time.monotonic()
    done = user.run(user.client, str(user.workspace), "quick", "--port", str(user.port))
    print(f"second run: {time.monotonic() - started:.1f}s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "already registered" in done.stdout and "already up to date" in done.stdout

    after = user.admin(f"/clients/{user.client}").json()
    ports = {i["service"]: i["port"] for i in before["instances"]}
    assert {i["service"]: i["port"] for i in after["instances"]} == ports
    assert [c["client_id"] for c in user.admin("/clients").json()] == [user.client]
    assert user.token_file.read_text() == token and user.token_file.stat().st_mtime == token_stat.st_mtime
    assert user.mcp_json.read_text() == config
    assert len(list(user.workspace.glob(".mcp.json.bak-*"))) == 1
    symbols = await find_symbol_with_file_config(user.mcp_json, token.strip(), "Warehouse")
    assert symbols and symbols[0]["name_path"] == "Warehouse"

    status = user.run("--status", user.client, "--port", str(user.port))
    assert status.returncode == 0 and "running" in status.stdout


@pytest.mark.serena
@pytest.mark.slow
def test_doctor_and_scope_user_through_claude(user: Setup) -> None:
    fake_bin = user.root / "bin"
    fake_bin.mkdir(exist_ok=True)
    calls = user.root / "claude-calls.jsonl"
    (fake_bin / "claude").write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    (fake_bin / "claude").chmod(0o755)
    env = user.env | {"PARADISE_DATA_DIR": str(user.data_dir), "PARADISE_URL": f"http://127.0.0.1:{user.port}",
                      "PYTHONPATH": str(user.repo)}

    def cli(*args: str, path: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bridge", *args], env=env | {"PATH": path}, cwd=user.repo,
                              capture_output=True, text=True, timeout=120)

    doctor = json.loads(cli("--json", "doctor", path=os.environ["PATH"]).stdout)
    assert doctor["bridge"]["reachable"] and doctor["bridge"]["runtime"] == "process"
    assert doctor["serena"] == doctor["serena"] | {"installed": True, "venv": str(serena_venv_path())}

    added = cli("mcp-config", user.client, "--scope", "user", path=f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    assert added.returncode == 0, added.stderr
    argvs = [json.loads(line) for line in calls.read_text().splitlines()]
    assert [argv[:3] + argv[4:] for argv in argvs] == [
        ["mcp", "add-json", f"paradise-{s}", "--scope", "user"] for s in ("quality", "serena")
    ]
    assert json.loads(argvs[1][3])["url"] == f"http://127.0.0.1:{user.port}/c/{user.client}/serena/mcp"

    without = cli("mcp-config", user.client, "--scope", "user", path="/usr/bin:/bin")
    assert without.returncode == 1 and "`claude` was not found" in without.stderr
    assert "claude mcp add --transport http paradise-serena" in without.stderr


@pytest.mark.serena
@pytest.mark.slow
def test_stop_leaves_no_process_and_keeps_the_client(user: Setup) -> None:
    running = [" ".join(proc.cmdline()) for proc in leftovers(user.root, user.client)]
    assert any("bridge serve" in line for line in running), running
    assert any("start-mcp-server" in line for line in running), running  # Serena itself
    done = user.run("--stop")
    assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + 15
    while leftovers(user.root, user.client) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(user.root, user.client) == []
    assert not (user.data_dir / "bridge.pid").exists()
    assert user.token_file.exists()
    status = user.run("--status", user.client, "--port", str(user.port))
    assert status.returncode == 1 and "not running" in status.stdout


# ---- failures: one sentence, nothing half-made --------------------------------------------------------


@pytest.fixture
def fresh_user(tmp_path: Path) -> Iterator[Setup]:
    setup = new_user(tmp_path, client="e2e-fresh", pool=1)
    try:
        yield setup
    finally:
        clean_up(setup)


def last_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("start-devops-paradise: log: "), done.stderr
    return lines[-2]


@pytest.mark.parametrize(("python", "sentence"), [
    ("/nonexistent/python3", "the Python interpreter '/nonexistent/python3' (from PYTHON) was not found; "
                             "point PYTHON at Python 3.11 or newer, or unset it."),
    ("OLD", "Python 3.11 or newer is needed, but OLD is Python 3.9.18; install a newer one or set PYTHON to it."),
])
def test_a_missing_or_old_python_is_named_in_one_sentence(fresh_user: Setup, python: str, sentence: str) -> None:
    old = fresh_user.root / "python3.9"  # answers the version question only
    old.write_text('#!/bin/sh\ncase "$2" in *"%d.%d.%d"*) echo 3.9.18 ;; *) exit 1 ;; esac\n')
    old.chmod(0o755)
    env = {k: v for k, v in fresh_user.env.items() if k != "PARADISE_VENV"}
    env["PYTHON"] = python.replace("OLD", str(old))
    done = fresh_user.run(fresh_user.client, "--port", str(fresh_user.port), env=env)
    assert done.returncode == 1
    assert last_error(done) == "start-devops-paradise: error: " + sentence.replace("OLD", str(old))
    assert not (fresh_user.repo / ".venv").exists()


def test_a_failed_registration_leaves_no_token_and_no_client(fresh_user: Setup) -> None:
    # a pool of one port cannot hold the client's two instances: the bridge refuses the registration
    done = fresh_user.run(fresh_user.client, "--runtime", "process", "--port", str(fresh_user.port))
    assert done.returncode == 1, done.stdout
    assert last_error(done).startswith("start-devops-paradise: error: registering client e2e-fresh failed: 503")
    assert not fresh_user.token_file.exists()
    assert fresh_user.admin("/clients").json() == []


def test_usage_errors_and_help(fresh_user: Setup) -> None:
    assert fresh_user.run("--help").returncode == 0
    bad = fresh_user.run("Not_A_Name")
    assert bad.returncode == 2 and "is not valid" in bad.stderr
    assert fresh_user.run("--runtime", "kubernetes").returncode == 2


# ---- the same on Docker, where an engine runs and the images are built --------------------------------


def docker_engine() -> Any:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception:
        return None
    return client


def remove_docker_objects(engine: Any, client_id: str) -> None:
    label = {"label": f"devops-paradise.client={client_id}"}
    with contextlib.suppress(Exception):
        for container in engine.containers.list(all=True, filters=label):
            container.remove(force=True)
        for volume in engine.volumes.list(filters=label):
            volume.remove(force=True)
        for network in engine.networks.list(filters=label):
            network.remove()


@pytest.mark.docker
@pytest.mark.slow
async def test_docker_runtime_end_to_end(tmp_path: Path) -> None:
    engine = docker_engine()
    if engine is None:
        unavailable("no Docker engine answers")
    images = ("devops-paradise/serena:latest", "devops-paradise/quality:latest")
    missing = [tag for tag in images if not engine.images.list(name=tag)]
    if missing:
        unavailable(f"images not built (devops-paradise images build): {', '.join(missing)}")
    # Other bridges' containers on this engine are safe: each installation only adopts or removes its own.
    setup = new_user(tmp_path, client="e2e-docker")
    remove_docker_objects(engine, setup.client)
    try:
        done = setup.run(setup.client, str(setup.workspace), "quick", "--runtime", "docker", "--port", str(setup.port))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "docker runtime" in done.stdout
        token = setup.token_file.read_text().strip()
        symbols = await find_symbol_with_file_config(setup.mcp_json, token, "Warehouse")
        assert [(s["name_path"], s["relative_path"]) for s in symbols] == [("Warehouse", "inventory/models.py")]

        assert setup.run("--stop").returncode == 0
        running = engine.containers.list(filters={"label": f"devops-paradise.client={setup.client}"})
        assert running == []
        assert leftovers(setup.root, setup.client) == []
    finally:
        clean_up(setup)
        remove_docker_objects(engine, setup.client)
        engine.close()
