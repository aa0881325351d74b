from __future__ import annotations

from pathlib import Path

import pytest

from bridge.lifecycle import requirements
from bridge.lifecycle.requirements import workspace_notes
from bridge.settings import BridgeSettings


@pytest.fixture
def settings(tmp_path: Path) -> BridgeSettings:
    """A bridge whose Serena venv has pyright and no language pack (an empty directory stands for it)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    langserver = venv / "bin" / "pyright-langserver"
    langserver.write_text("#!/bin/sh\n")
    langserver.chmod(0o755)
    return BridgeSettings(data_dir=tmp_path / "data", serena_venv=venv)


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


def test_python_workspace_has_no_notes(tmp_path: Path, settings: BridgeSettings) -> None:
    ws = workspace(tmp_path)
    (ws / "pkg").mkdir()
    (ws / "pkg" / "mod.py").write_text("x = 1\n")
    assert workspace_notes(ws, settings) == []


def test_empty_workspace(tmp_path: Path, settings: BridgeSettings) -> None:
    ws = workspace(tmp_path)
    (ws / ".git").mkdir()
    (ws / ".git" / "HEAD").write_text("ref")  # skipped: not source
    (notes,) = workspace_notes(ws, settings)
    assert notes.startswith("workspace is empty")


def test_each_language_without_a_language_server_is_named(tmp_path: Path, settings: BridgeSettings) -> None:
    ws = workspace(tmp_path)
    (ws / "composer.json").write_text("{}\n")
    (ws / "index.php").write_text("<?php\n")
    (ws / "lib.rs").write_text("fn main() {}\n")
    notes = workspace_notes(ws, settings)
    assert len(notes) == 2, notes
    assert any("no language server for php" in n and "--languages php" in n for n in notes), notes
    assert any("no language server for rust" in n and "PARADISE_SERENA_LANGUAGE_SERVERS" in n for n in notes), notes


def test_registered_languages_win_over_detection(tmp_path: Path, settings: BridgeSettings) -> None:
    ws = workspace(tmp_path)
    (ws / "mod.py").write_text("x = 1\n")
    (notes,) = workspace_notes(ws, settings, ["python", "typescript"])
    assert "no language server for typescript" in notes


def test_only_other_files(tmp_path: Path, settings: BridgeSettings) -> None:
    ws = workspace(tmp_path)
    (ws / "README.txt").write_text("hi")
    (notes,) = workspace_notes(ws, settings)
    assert notes.startswith("no source files of a language Serena knows")


def test_unreadable_workspace(tmp_path: Path, settings: BridgeSettings, monkeypatch) -> None:
    # Root reads everything, so the permission check itself is simulated here.
    monkeypatch.setattr(requirements.os, "access", lambda path, mode: False)
    (notes,) = workspace_notes(tmp_path, settings)
    assert "is not readable" in notes and str(tmp_path) in notes
