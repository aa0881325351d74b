"""Real Serena for every client, through the bridge, on the process runtime.

The bridge installs Serena itself on first use into PARADISE_SERENA_VENV (a cache directory here, so later
runs reuse it). Everything is loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import BridgeProcess, bridge_with_serena, instance_pid, mcp_client, serving

pytestmark = [pytest.mark.serena, pytest.mark.slow]


def python_workspace(root: Path, package: str, cls: str) -> Path:
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "model.py").write_text(
        f"class {cls}:\n    def total(self) -> int:\n        return 42\n\n\ndef helper_{cls.lower()}() -> {cls}:\n"
        f"    return {cls}()\n"
    )
    return root


@pytest.fixture(scope="module")
def serena_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    with serving(bridge_with_serena(tmp_path_factory.mktemp("serena-bridge"))) as proc:
        yield proc


def symbols(text: str) -> list[str]:
    return [entry["name_path"] for entry in json.loads(text)]


async def find(bridge: BridgeProcess, client_id: str, token: str, name: str) -> list[str]:
    async with mcp_client(bridge.mcp_url(client_id, "serena"), token) as client:
        result = await client.call_tool("find_symbol", {"name_path_pattern": name})
    assert not result.is_error, result.content
    return symbols(result.content[0].text)


async def test_each_client_gets_its_own_serena(serena_bridge: BridgeProcess, tmp_path: Path) -> None:
    bridge = serena_bridge
    shapes = bridge.register("shapes", python_workspace(tmp_path / "a", "geometry", "Circle"), ["serena"], wait=240)
    books = bridge.register("books", python_workspace(tmp_path / "b", "accounts", "Ledger"), ["serena"], wait=240)
    for created in (shapes, books):
        instance = created["instances"][0]
        assert instance["state"] == "running", instance
        assert instance["notes"] == []
    async with mcp_client(bridge.mcp_url("shapes", "serena"), shapes["token"]) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"find_symbol", "get_symbols_overview", "find_referencing_symbols"} <= tools
    assert await find(bridge, "shapes", shapes["token"], "Circle") == ["Circle"]
    assert await find(bridge, "books", books["token"], "Ledger") == ["Ledger"]
    # Each Serena serves exactly its own project.
    assert await find(bridge, "shapes", shapes["token"], "Ledger") == []
    assert await find(bridge, "books", books["token"], "Circle") == []
    kinds = [e["kind"] for e in bridge.api("GET", "/events", params={"client_id": "shapes"}).json()]
    assert "instance.ready" in kinds and "instance.step" in kinds
    # Serena keeps its files in the instance's home, not in the user's workspace.
    assert not (tmp_path / "a" / ".serena").exists()


async def test_delete_leaves_no_serena_or_language_server(serena_bridge: BridgeProcess, tmp_path: Path) -> None:
    bridge = serena_bridge
    created = bridge.register("tidy", python_workspace(tmp_path, "tidy", "Broom"), ["serena"], wait=240)
    assert await find(bridge, "tidy", created["token"], "Broom") == ["Broom"]
    root = psutil.Process(instance_pid(bridge, "tidy", "serena"))
    family = [root, *root.children(recursive=True)]
    assert any("pyright" in " ".join(p.cmdline()) or "node" in p.name() for p in family), family
    assert bridge.api("DELETE", "/clients/tidy").status_code == 204
    _, alive = psutil.wait_procs(family, timeout=10)
    assert alive == []
    home = str(bridge.data_dir / "instances" / "tidy")
    leftovers = [p for p in psutil.process_iter(["cmdline", "environ"]) if home in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []


async def test_empty_and_unsupported_workspaces_register_and_say_what_is_missing(
    serena_bridge: BridgeProcess, tmp_path: Path
) -> None:
    bridge = serena_bridge
    empty = tmp_path / "empty"
    empty.mkdir()
    ruby = tmp_path / "ruby"  # no package registry here ships a Ruby language server
    ruby.mkdir()
    (ruby / "main.rb").write_text("def main\n  puts 1\nend\n")
    for name, workspace, words in (("hollow", empty, "workspace is empty"),
                                   ("rubyist", ruby, "no language server for ruby")):
        created = bridge.register(name, workspace, ["serena"], wait=240)
        instance = created["instances"][0]
        assert instance["state"] == "running", instance
        assert any(words in note for note in instance["notes"]), instance["notes"]
        # Serena's non-semantic tools keep working.
        async with mcp_client(bridge.mcp_url(name, "serena"), created["token"]) as client:
            memories = await client.call_tool("list_memories", {})
            search = await client.call_tool("search_for_pattern", {"substring_pattern": "def main"})
        assert not memories.is_error and not search.is_error
        assert ("main.rb" in search.content[0].text) == (name == "rubyist")
        bridge.api("DELETE", f"/clients/{name}")
