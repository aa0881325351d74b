"""Serena answers for every language a team writes, through a running bridge on the process runtime, offline.

One small workspace per language (tests/fixtures/languages) defines ``Calculator`` in one file and uses it in
another; ``find_symbol`` must find the definition and ``find_referencing_symbols`` the use, so the language
server itself answered (pattern search knows no symbols). The servers are the packs installed ahead of time
(scripts/install-language-packs.sh); instances run sandboxed with no network. One bridge for the module, and
each client is deleted after its test, so at most one Serena runs at a time.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instances.serena import languages as L
from tests.helpers import BridgeProcess, bridge_with_serena, mcp_client, serena_venv_path, serving

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
    return Path(shutil.copytree(FIXTURES / fixture, tmp_path / fixture))


async def call(bridge: BridgeProcess, client: str, token: str, tool: str, arguments: dict) -> Any:
    async with mcp_client(bridge.mcp_url(client, "serena"), token) as session:
        result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def assert_answers(bridge: BridgeProcess, client: str, token: str, case: tuple[str, str, str, str]) -> None:
    _, symbol, defined_in, used_in = case
    found = await call(bridge, client, token, "find_symbol", {"name_path_pattern": symbol})
    # The definition, by its plain name (JS numbers overloads, Calculator[0]); a file's own entry is not one.
    defined = [f["name_path"] for f in found
               if f["kind"] != "File" and (f["name_path"].split("[")[0], f["relative_path"]) == (symbol, defined_in)]
    assert defined, found
    refs = await call(bridge, client, token, "find_referencing_symbols",
                      {"name_path": defined[0], "relative_path": defined_in})
    assert used_in in refs, refs  # Serena groups the referencing symbols by file


@pytest.mark.parametrize("language", list(CASES))
async def test_language_answers_find_symbol_and_references(
    serena_bridge: BridgeProcess, tmp_path: Path, language: str
) -> None:
    need(language)
    case = CASES[language]
    client = f"lang-{language}"
    created = serena_bridge.register(client, workspace(tmp_path, case[0]), ["serena"], wait=240)
    try:
        instance = created["instances"][0]
        assert instance["state"] == "running", json.dumps(instance)
        assert instance["notes"] == [], instance["notes"]
        await assert_answers(serena_bridge, client, created["token"], case)
    finally:
        serena_bridge.api("DELETE", f"/clients/{client}")


async def test_mixed_python_and_typescript_repository_answers_for_both(
    serena_bridge: BridgeProcess, tmp_path: Path
) -> None:
    need("typescript")
    created = serena_bridge.register("lang-mixed", workspace(tmp_path, "mixed"), ["serena"], wait=240)
    try:
        assert created["instances"][0]["notes"] == [], created["instances"][0]
        token = created["token"]
        await assert_answers(serena_bridge, "lang-mixed", token,
                             ("", "Calculator", "web/src/calculator.ts", "web/src/main.ts"))
        await assert_answers(serena_bridge, "lang-mixed", token, ("", "PriceList", "api/pricing.py", "api/pricing.py"))
    finally:
        serena_bridge.api("DELETE", "/clients/lang-mixed")
