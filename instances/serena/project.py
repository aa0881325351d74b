"""One instance's language set-up, written into its private Serena home before Serena starts.

Serena's own detection enables only the workspace's largest language (``_determine_project_language_servers``),
so a Python API with a TypeScript front end would answer for one half. Here the instance writes the project's
``project.yml`` itself with every language the bridge asked for (or, without a list, every one detected), links
the installed npm packs where Serena looks before downloading, and gives Serena the ``ls_specific_settings`` of
the servers it finds by path (pyright, clangd, the operator's). Languages without a server are left out of
``project.yml`` (Serena would try to download theirs) and reported by the bridge as degraded.

Standard library only; every value is written as JSON, which is valid YAML.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from instances.serena import languages as L

PROJECT_FILE = "project.yml"


def resource_dir(serena_home: Path) -> Path:
    """Serena's ``ls_resources_dir`` for SERENA_HOME (solidlsp settings: <home>/language_servers/static)."""
    return Path(serena_home) / "language_servers" / "static"


def servers(languages: list[str], serena_venv: Path, operator: dict[str, Path]) -> dict[str, Path]:
    """The languages that have a server here, with its path; the others are left out."""
    found = {name: L.server_for(name, serena_venv, operator) for name in languages}
    return {name: path for name, path in found.items() if path is not None}


def ls_specific_settings(served: dict[str, Path], python_ls: Path, operator: dict[str, Path]) -> dict:
    settings: dict[str, dict] = {"python": {"ls_path": str(python_ls)}}
    for name, path in served.items():
        pack = L.PACKS.get(L.LANGUAGES[name].pack or "")
        if name in operator or (pack is not None and pack.pypi and name != "python"):
            settings[L.LANGUAGES[name].serena_id] = {"ls_path": str(path)}
    return settings


def link_packs(serena_home: Path, serena_venv: Path, served: dict[str, Path], operator: dict[str, Path]) -> None:
    """Point Serena's install dir of each served npm pack at the pack (read-only, shared by all instances)."""
    for name in served:
        pack = L.PACKS.get(L.LANGUAGES[name].pack or "")
        if name in operator or pack is None or pack.link is None:
            continue
        cls, dirname = pack.link
        link = resource_dir(serena_home) / cls / dirname
        target = L.packs_dir(serena_venv) / pack.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():  # a download of an earlier Serena run: ours wins
            import shutil

            shutil.rmtree(link)
        link.symlink_to(target, target_is_directory=True)


def write_project_yml(project_dir: Path, name: str, serena_ids: list[str]) -> Path:
    """Serena's project.yml with every key its template has (a missing key makes Serena rewrite the file)."""
    values = {
        "project_name": name, "language_servers": serena_ids, "encoding": "utf-8", "activation_command": None,
        "activation_command_timeout": 180, "line_ending": None, "language_backend": None, "agent_interface": None,
        "ignore_all_files_in_gitignore": True, "ls_specific_settings": {}, "ls_workspace_folders": ["."],
        "ls_additional_workspace_folders": [], "ignored_paths": [], "read_only": False, "excluded_tools": [],
        "included_optional_tools": [], "fixed_tools": [], "excluded_apis": [], "included_apis": [],
        "default_modes": None, "added_modes": None, "initial_prompt": "", "symbol_info_budget": None,
        "read_only_memory_patterns": [], "ignored_memory_patterns": [],
    }
    project_dir.mkdir(parents=True, exist_ok=True)
    path = project_dir / PROJECT_FILE
    text = "# Written by instances/serena/project.py on every start.\n"
    text += "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items())
    tmp = path.with_name(PROJECT_FILE + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def chosen_languages(workspace: Path, asked: str | None) -> list[str]:
    """The languages given (comma-separated, from the bridge), else those detected in the workspace."""
    names = [part for part in (asked or "").split(",") if part.strip()]
    return L.normalize(names) if names else L.detect(workspace)


def set_up_languages(
    serena_home: Path, project_data_dir: Path, workspace: Path, serena_venv: Path, *,
    languages: list[str], operator: dict[str, Path],
) -> dict:
    """Links, project.yml (unless the workspace has its own .serena/project.yml) and the ls settings."""
    served = servers(languages, serena_venv, operator)
    link_packs(serena_home, serena_venv, served, operator)
    if not (workspace / ".serena" / PROJECT_FILE).is_file():
        ids = L.serena_ids([name for name in languages if name in served])
        write_project_yml(project_data_dir / workspace.name, workspace.name, ids)
    python_ls = L.venv_bin(serena_venv) / "pyright-langserver"
    return ls_specific_settings(served, python_ls, operator)


def server_path_env(operator: dict[str, Path]) -> str:
    """PATH with the operator's server directories first (gopls and others are looked up on PATH)."""
    dirs = [str(path.parent) for path in operator.values()]
    return os.pathsep.join([*dict.fromkeys(dirs), os.environ.get("PATH", "")])
