from __future__ import annotations

from pathlib import Path

from bridge.lifecycle import requirements
from bridge.lifecycle.requirements import workspace_notes


def test_python_workspace_has_no_notes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "main.go").write_text("package main\n")
    assert workspace_notes(tmp_path) == []


def test_empty_workspace(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")  # skipped: not source
    (notes,) = workspace_notes(tmp_path)
    assert notes.startswith("workspace is empty")


def test_languages_without_a_language_server_are_named(tmp_path: Path) -> None:
    (tmp_path / "main.go").write_text("package main\n")
    (tmp_path / "lib.rs").write_text("fn main() {}\n")
    (notes,) = workspace_notes(tmp_path)
    assert "no language server installed for go, rust" in notes


def test_only_other_files(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("hi")
    (notes,) = workspace_notes(tmp_path)
    assert notes.startswith("no Python source files")


def test_unreadable_workspace(tmp_path: Path, monkeypatch) -> None:
    # Root reads everything, so the permission check itself is simulated here.
    monkeypatch.setattr(requirements.os, "access", lambda path, mode: False)
    (notes,) = workspace_notes(tmp_path)
    assert "is not readable" in notes and str(tmp_path) in notes
