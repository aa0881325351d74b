"""``devops-paradise catalog``: what it writes is what the bridge reads, and what it refuses before installing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.catalog import load_catalog
from bridge.catalog.packages import MANIFEST, Package, packages_dir
from bridge.cli import main
from bridge.cli.catalog import read_entries, write_entries


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PARADISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PARADISE_URL", "http://127.0.0.1:9")  # nothing listens: no bridge answers
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", "x" * 20)
    monkeypatch.delenv("PARADISE_CATALOG", raising=False)
    return tmp_path / "data"


def test_written_entries_are_the_catalog_the_bridge_loads(data: Path) -> None:
    entries = {"git": {"package": "pypi:mcp-server-git==2026.10.19", "transport": "stdio",
                       "args": ["--repository", "{workspace}"],
                       "env": {"GIT_AUTHOR_NAME": 'Ada "the" Lovelace\\', "ÜBER": "ü\n"}}}
    write_entries(data / "catalog.toml", entries)
    assert read_entries(data / "catalog.toml") == entries
    spec = load_catalog(None, data)["git"]
    assert spec.args == ["--repository", "{workspace}"] and spec.env["ÜBER"] == "ü\n"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serena", "npm:x@1.0.0"], "cannot be a service name"),
        (["Bad Name", "npm:x@1.0.0"], "cannot be a service name"),
        (["x", "npm:x@latest"], "exact version"),
        (["x", "npm:x@1.0.0", "--arg={token}"], "unknown placeholder {token}"),
        (["x", "npm:x@1.0.0", "--env", "NOVALUE"], "--env takes NAME=VALUE"),
    ],
)
def test_add_refuses_before_installing_anything(data: Path, capsys, argv, words) -> None:
    assert main(["catalog", "add", *argv]) == 1
    assert words in capsys.readouterr().err
    assert not packages_dir(data).exists() and not (data / "catalog.toml").exists()


def installed(data: Path, ref: str) -> Path:
    package = Package.parse(ref)
    target = package.directory(packages_dir(data))
    target.mkdir(parents=True)
    (target / MANIFEST).write_text(json.dumps({"package": ref, "argv": ["/usr/bin/node", "x.js"]}))
    return target


def test_rm_removes_the_entry_and_an_install_no_other_entry_uses(data: Path, capsys) -> None:
    shared, alone = "npm:@modelcontextprotocol/server-everything@2026.8.31", "pypi:mcp-server-git==2026.10.19"
    shared_dir, alone_dir = installed(data, shared), installed(data, alone)
    write_entries(data / "catalog.toml", {"a": {"package": shared}, "b": {"package": shared},
                                          "git": {"package": alone}})
    assert main(["catalog", "rm", "a"]) == 0
    assert shared_dir.is_dir() and "no bridge answered" in capsys.readouterr().out  # b still uses it
    assert main(["catalog", "rm", "git"]) == 0
    assert not alone_dir.exists() and set(read_entries(data / "catalog.toml")) == {"b"}
    assert main(["catalog", "rm", "git"]) == 4  # not there any more
    assert main(["catalog", "rm", "serena"]) == 4  # built-ins are not catalog add's to remove
