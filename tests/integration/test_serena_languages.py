"""Serena answers for every language a team writes, through a running bridge on the process runtime, offline.

One small workspace per language (tests/fixtures/languages) defines ``Calculator`` in one file and uses it in
another; ``find_symbol`` must find the definition and ``find_referencing_symbols`` the use, so the language
server itself answered (pattern search knows no symbols). The servers are the packs installed ahead of time
(scripts/install-language-packs.sh); instances run sandboxed with no network. One bridge for the module; the
per-language workspaces are registered at once, so their Serenas start side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from instances.serena import languages as L
from tests.helpers import (
    BridgeProcess,
    bridge_with_serena,
    instance_pid,
    mcp_client,
    serena_venv_path,
    serving,
)

pytestmark = [pytest.mark.serena, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "languages"
# language -> (fixture, symbol, file defining it, file using it)
CASES = {
    "typescript": ("typescript", "Calculator", "src/calculator.ts", "src/main.ts"),
    "javascript": ("javascript", "Calculator", "src/calculator.js", "src/main.js"),
    "go": ("go", "Calculator", "calculator.go", "main.go"),
    "cpp": ("cpp", "Calculator", "src/calculator.h", "src/main.cpp"),
    "bash": ("bash", "calculator_add", "calculator.sh", "main.sh"),
    "php": ("php", "Calculator", "src/Calculator.php", "src/Main.php"),
}


def pack_missing(language: str) -> str | None:
    pack = L.PACKS[L.LANGUAGES[language].pack or ""]
    if L.pack_installed(pack, serena_venv_path()):
        return None
    return f"the {pack.name} pack is not installed (scripts/install-language-packs.sh)"


def need(language: str) -> None:
    reason = pack_missing(language)
    if reason and os.environ.get("CI"):
        pytest.fail(reason)  # CI installs the packs: a missing one is a failure there, not a skip
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def serena_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    with serving(bridge_with_serena(tmp_path_factory.mktemp("serena-languages"), ready_timeout=180)) as proc:
        yield proc


def workspace(tmp_path: Path, fixture: str) -> Path:
    return Path(shutil.copytree(FIXTURES / fixture, tmp_path / fixture))  # clangd and gopls may write caches


async def call(bridge: BridgeProcess, client: str, token: str, tool: str, arguments: dict) -> Any:
    async with mcp_client(bridge.mcp_url(client, "serena"), token) as session:
        result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def assert_answers(bridge: BridgeProcess, client: str, token: str, case: tuple[str, str, str, str]) -> None:
    _, symbol, defined_in, used_in = case
    found = await call(bridge, client, token, "find_symbol", {"name_path_pattern": symbol})
    # The definition, by its plain name (JS numbers overloads, Calculator[0]); a file's own entry is not one,
    # and the class or function comes before a same-named export (CommonJS ``module.exports = { Calculator }``).
    in_file = [f for f in found
               if f["kind"] != "File" and (f["name_path"].split("[")[0], f["relative_path"]) == (symbol, defined_in)]
    defined = [f["name_path"] for f in sorted(in_file, key=lambda f: f["kind"] not in ("Class", "Function"))]
    assert defined, found
    refs = await call(bridge, client, token, "find_referencing_symbols",
                      {"name_path": defined[0], "relative_path": defined_in})
    assert used_in in refs, refs  # Serena groups the referencing symbols by file


@pytest.fixture(scope="module")
def registered(serena_bridge: BridgeProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    """Every language whose pack is installed, and the mixed repository, registered at once (their Serenas start
    side by side, so the module costs about one start, not seven); deleted at the end."""
    base = tmp_path_factory.mktemp("language-workspaces")
    fixtures = {f"lang-{name}": case[0] for name, case in CASES.items() if pack_missing(name) is None}
    if pack_missing("typescript") is None:
        fixtures |= {"lang-mixed": "mixed", "lang-js-plain": "javascript-plain"}
    with ThreadPoolExecutor(max_workers=len(fixtures) or 1) as pool:
        futures = {client: pool.submit(serena_bridge.register, client, workspace(base, fixture), ["serena"], 240)
                   for client, fixture in fixtures.items()}
        created = {client: future.result() for client, future in futures.items()}
    yield created
    for client in created:
        serena_bridge.api("DELETE", f"/clients/{client}")


def running_without_notes(created: dict) -> str:
    instance = created["instances"][0]
    assert instance["state"] == "running", json.dumps(instance)
    assert instance["notes"] == [], instance["notes"]
    return created["token"]


@pytest.mark.parametrize("language", list(CASES))
async def test_language_answers_find_symbol_and_references(
    serena_bridge: BridgeProcess, registered: dict[str, dict], language: str
) -> None:
    need(language)
    client = f"lang-{language}"
    token = running_without_notes(registered[client])
    await assert_answers(serena_bridge, client, token, CASES[language])


async def test_mixed_python_and_typescript_repository_answers_for_both(
    serena_bridge: BridgeProcess, registered: dict[str, dict]
) -> None:
    need("typescript")
    token = running_without_notes(registered["lang-mixed"])
    assert registered["lang-mixed"]["languages"] == ["typescript", "python"]  # detected, shown in the client view
    await assert_answers(serena_bridge, "lang-mixed", token,
                         ("", "Calculator", "web/src/calculator.ts", "web/src/main.ts"))
    await assert_answers(serena_bridge, "lang-mixed", token, ("", "PriceList", "api/pricing.py", "api/pricing.py"))


async def test_registered_languages_win_and_a_language_without_a_server_is_named(
    serena_bridge: BridgeProcess, tmp_path: Path
) -> None:
    """``client add --languages ts,ruby`` (the CLI, so the flag and the API field both) over the mixed repository:
    TypeScript answers, Python (detected, not asked for) is not served, ruby is named as lacking a server."""
    need("typescript")
    token_file = tmp_path / "token"
    env = {**os.environ, "PARADISE_URL": serena_bridge.url, "PARADISE_ADMIN_TOKEN": serena_bridge.admin_token}
    argv = [sys.executable, "-m", "bridge", "client", "add", "lang-asked", "--workspace",
            str(workspace(tmp_path, "mixed")), "--service", "serena", "--languages", "ts,ruby", "--wait", "240",
            "--token-file", str(token_file)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    try:
        created = serena_bridge.api("GET", "/clients/lang-asked").json()
        assert created["languages"] == ["typescript", "ruby"]
        instance = created["instances"][0]
        assert instance["state"] == "running", json.dumps(instance)
        (note,) = instance["notes"]  # ruby, by name, and how to add a server
        assert note.startswith("no language server for ruby") and "PARADISE_SERENA_LANGUAGE_SERVERS" in note
        token = token_file.read_text().strip()
        await assert_answers(serena_bridge, "lang-asked", token,
                             ("", "Calculator", "web/src/calculator.ts", "web/src/main.ts"))
        python = await call(serena_bridge, "lang-asked", token, "find_symbol", {"name_path_pattern": "PriceList"})
        assert [f for f in python if f["kind"] == "Class"] == [], python  # no Python server: not asked for
        kinds = {(e["kind"], e["message"]) for e in serena_bridge.api(
            "GET", "/events", params={"client_id": "lang-asked"}).json()}
        assert ("instance.degraded", note) in kinds
    finally:
        serena_bridge.api("DELETE", "/clients/lang-asked")


def test_an_unknown_language_is_refused_with_422(serena_bridge: BridgeProcess, tmp_path: Path) -> None:
    body = {"client_id": "lang-bad", "workspace": str(tmp_path), "services": ["serena"], "languages": ["klingon"]}
    resp = serena_bridge.api("POST", "/clients", json=body)
    assert resp.status_code == 422, resp.text
    assert "unknown language 'klingon'" in resp.text
    assert serena_bridge.api("GET", "/clients/lang-bad").status_code == 404


async def test_an_operator_supplied_server_is_mounted_and_used(tmp_path_factory: pytest.TempPathFactory) -> None:
    """PARADISE_SERENA_LANGUAGE_SERVERS names a server outside anything the sandbox mounts by itself: a wrapper
    around clangd in a directory of its own. It must be mounted read-only and be the server Serena runs."""
    need("cpp")
    base = tmp_path_factory.mktemp("operator-servers")
    wrapper = base / "opt" / "clangd-wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\n{L.venv_bin(serena_venv_path()) / 'clangd'} \"$@\"\n")  # no exec: stays visible
    wrapper.chmod(0o755)
    (base / "servers.toml").write_text(f'cpp = "{wrapper}"\n')
    bridge = bridge_with_serena(base, ready_timeout=180)
    bridge.env["PARADISE_SERENA_LANGUAGE_SERVERS"] = str(base / "servers.toml")
    with serving(bridge):
        created = bridge.register("lang-operator", workspace(base, "cpp"), ["serena"], wait=240)
        assert created["instances"][0]["notes"] == [], created["instances"][0]
        await assert_answers(bridge, "lang-operator", created["token"], CASES["cpp"])
        root = psutil.Process(instance_pid(bridge, "lang-operator", "serena"))
        commands = [" ".join(p.cmdline()) for p in root.children(recursive=True)]
        assert any(str(wrapper) in command for command in commands), commands


def serena_home(bridge: BridgeProcess, client: str) -> Path:
    """The instance's private Serena home as its sandbox sees it (a tmpfs there: read through /proc)."""
    root = psutil.Process(instance_pid(bridge, client, "serena"))
    serena = next(p for p in [root, *root.children(recursive=True)] if "start-mcp-server" in p.cmdline())
    home = bridge.data_dir / "instances" / client / "serena" / "home" / ".serena"
    return Path(f"/proc/{serena.pid}/root{home.resolve()}")


def serena_log(bridge: BridgeProcess, client: str) -> str:
    """Serena's own log files of the client's instance, joined."""
    logs = serena_home(bridge, client) / "logs"
    return "".join(path.read_text(errors="replace") for path in sorted(logs.rglob("*.txt")))


async def test_javascript_without_a_jsconfig_answers_references_across_files(
    serena_bridge: BridgeProcess, registered: dict[str, dict]
) -> None:
    """CommonJS with no package.json and no jsconfig.json: tsserver would see each file alone; the instance
    gives it a project of its own over the workspace, written into its home, never into the workspace."""
    need("javascript")
    token = running_without_notes(registered["lang-js-plain"])
    await assert_answers(serena_bridge, "lang-js-plain", token,
                         ("", "Calculator", "lib/calculator.js", "index.js"))
    workspace = Path(registered["lang-js-plain"]["workspace"])
    assert sorted(p.name for p in workspace.rglob("*")) == ["calculator.js", "index.js", "lib"]  # untouched
    implicit = serena_home(serena_bridge, "lang-js-plain") / "js-project" / "jsconfig.json"
    assert f"{workspace}/**/*.js" in json.loads(implicit.read_text())["include"]


async def test_the_servers_are_ready_at_start(serena_bridge: BridgeProcess, registered: dict[str, dict]) -> None:
    """tsserver has loaded the workspace's project before the first query (which then does not wait Serena's
    grace for indexing), bash-language-server is ready when its analysis completes, not after 3 s, and in the
    mixed repository each server has read a file of its language while the other started."""
    need("typescript")
    need("bash")
    mixed = serena_log(serena_bridge, "lang-mixed")
    assert "PyrightServer read api/pricing.py at start" in mixed
    assert "TypeScriptLanguageServer read web/src/calculator.ts at start" in mixed
    workspace = Path(registered["lang-typescript"]["workspace"])
    assert f"tsserver loaded its projects at start: {workspace}/tsconfig.json" in serena_log(
        serena_bridge, "lang-typescript")
    bash = serena_log(serena_bridge, "lang-bash")
    assert "bash-language-server finished its analysis: ready" in bash
    assert "Timeout waiting for bash server ready signal" not in bash
