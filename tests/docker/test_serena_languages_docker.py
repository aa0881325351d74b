"""Serena beyond Python on the Docker runtime: images/serena carries the language packs, and TypeScript, Go,
Bash and PHP workspaces, JavaScript without a jsconfig.json and a mixed Python + TypeScript repository answer
``find_symbol`` and ``find_referencing_symbols`` through a real bridge, from a container with no network
beyond the host (PARADISE_INSTANCE_EGRESS=none); an operator's server (PARADISE_SERENA_LANGUAGE_SERVERS, here
for C++) is mounted read-only into the container and is the server Serena runs there."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker.conftest import INSTANCE_UID
from tests.docker.conftest import docker_bridge as start_docker_bridge
from tests.helpers import BridgeProcess, mcp_client

pytestmark = [pytest.mark.docker, pytest.mark.serena, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "languages"
CLIENTS = {"dk-lang-ts", "dk-lang-mixed", "dk-lang-js-plain", "dk-lang-go", "dk-lang-bash", "dk-lang-php",
           "dk-lang-operator"}


@pytest.fixture(scope="module")
def operator_server(work: Path) -> Path:
    """A C++ server outside the image: a wrapper (no exec, so it stays in the process list) around the
    image's own clangd, in a directory of the host's, named in the operator's TOML."""
    wrapper = work / "opt" / "clangd-wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\n/opt/serena-venv/bin/clangd "$@"\n')
    wrapper.chmod(0o755)
    (work / "servers.toml").write_text(f'cpp = "{wrapper}"\n')
    return wrapper


@pytest.fixture(scope="module")
def bridge(engine: Any, images: dict[str, str], work: Path, operator_server: Path) -> Iterator[BridgeProcess]:
    env = {"PARADISE_SERENA_LANGUAGE_SERVERS": str(work / "servers.toml")}
    with start_docker_bridge(engine, work, CLIENTS, **env) as proc:
        yield proc


def owned_copy(fixture: str, target: Path) -> Path:
    shutil.copytree(FIXTURES / fixture, target)
    for path in [target, *target.rglob("*")]:
        os.chown(path, INSTANCE_UID, INSTANCE_UID)
    return target


async def answers(bridge: BridgeProcess, client: str, token: str, symbol: str, defined_in: str, used_in: str) -> None:
    async with mcp_client(bridge.mcp_url(client, "serena"), token) as session:
        found = json.loads((await session.call_tool("find_symbol", {"name_path_pattern": symbol})).content[0].text)
        in_file = [f for f in found if f["kind"] != "File" and f["relative_path"] == defined_in]
        paths = [f["name_path"] for f in sorted(in_file, key=lambda f: f["kind"] not in ("Class", "Function"))]
        assert paths, found
        refs = await session.call_tool("find_referencing_symbols", {"name_path": paths[0], "relative_path": defined_in})
    assert not refs.is_error, refs.content
    assert used_in in json.loads(refs.content[0].text), refs.content


@pytest.mark.parametrize(
    ("client", "fixture", "checks"),
    [("dk-lang-ts", "typescript", [("Calculator", "src/calculator.ts", "src/main.ts")]),
     ("dk-lang-js-plain", "javascript-plain", [("Calculator", "lib/calculator.js", "index.js")]),
     ("dk-lang-mixed", "mixed", [("Calculator", "web/src/calculator.ts", "web/src/main.ts"),
                                 ("PriceList", "api/pricing.py", "api/pricing.py")]),
     ("dk-lang-go", "go", [("Calculator", "calculator.go", "main.go")]),
     ("dk-lang-bash", "bash", [("calculator_add", "calculator.sh", "main.sh")]),
     ("dk-lang-php", "php", [("Calculator", "src/Calculator.php", "src/Main.php")])],
)
async def test_the_image_answers_beyond_python(
    bridge: BridgeProcess, work: Path, client: str, fixture: str, checks: list[tuple[str, str, str]]
) -> None:
    created = bridge.register(client, owned_copy(fixture, work / client), ["serena"], wait=240)
    try:
        instance = created["instances"][0]
        assert instance["state"] == "running" and instance["notes"] == [], json.dumps(instance)
        for symbol, defined_in, used_in in checks:
            await answers(bridge, client, created["token"], symbol, defined_in, used_in)
    finally:
        bridge.api("DELETE", f"/clients/{client}")


async def test_an_operator_server_is_mounted_into_the_container_and_used(
    bridge: BridgeProcess, engine: Any, work: Path, operator_server: Path
) -> None:
    created = bridge.register("dk-lang-operator", owned_copy("cpp", work / "dk-lang-operator"), ["serena"], wait=240)
    try:
        assert created["instances"][0]["notes"] == [], created["instances"][0]
        await answers(bridge, "dk-lang-operator", created["token"], "Calculator", "src/calculator.h", "src/main.cpp")
        processes = engine.containers.get("paradise-dk-lang-operator-serena").top()["Processes"]
        assert any(str(operator_server) in " ".join(row) for row in processes), processes
    finally:
        bridge.api("DELETE", "/clients/dk-lang-operator")
