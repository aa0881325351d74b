"""What a service needs on the host before a process instance can start, and what its workspace lacks.

Serena lives in its own virtualenv (its MCP SDK pins differ from the bridge's). It is installed once, on
first use, by one task however many instances wait for it, with progress in the log and the events.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from bridge.host import serena_install
from bridge.host.language_packs import language_notes
from bridge.settings import BridgeSettings
from instances.serena.languages import detect

_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".paradise", ".serena", "build", "dist"}


class RequirementError(RuntimeError):
    pass


class Requirements:
    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self._installs: dict[str, asyncio.Task[None]] = {}

    async def ensure(self, name: str, progress: Callable[[str], None]) -> None:
        """Install ``name`` unless present; concurrent callers share one installation."""
        if name != "serena":
            raise RequirementError(f"unknown requirement {name!r}")
        venv = self.settings.serena_venv_path
        version = self.settings.serena_version or serena_install.SERENA_VERSION
        if await asyncio.to_thread(serena_install.serena_installed, venv, version):
            return
        task = self._installs.get(name)
        if task is None or task.done():
            task = asyncio.create_task(self._install_serena(venv, version, progress))
            self._installs[name] = task
        await asyncio.shield(task)

    async def _install_serena(self, venv: Path, version: str, progress: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()

        def report(line: str) -> None:  # called from the installer's thread
            loop.call_soon_threadsafe(progress, line)

        report(f"installing Serena {version} into {venv} (first use; later starts reuse it)")
        try:
            await asyncio.to_thread(serena_install.install_serena, venv, version=version, progress=report)
        except serena_install.SerenaInstallError as exc:
            raise RequirementError(str(exc)) from None


def workspace_notes(
    workspace: Path, settings: BridgeSettings, languages: list[str] | None = None, *, image: bool = False
) -> list[str]:
    """What Serena's semantic tools will lack in this workspace, said plainly; empty when all is well."""
    return serena_languages_and_notes(workspace, settings, languages, image=image)[1]


def serena_languages_and_notes(
    workspace: Path, settings: BridgeSettings, languages: list[str] | None = None, *, image: bool = False
) -> tuple[list[str], list[str]]:
    """The languages Serena serves (the client's ``languages``, else those detected) and the notes on what it
    lacks: one per language whose server is not installed (``image``: in images/serena, which carries every
    pack, rather than in the host's Serena venv), or why nothing can be indexed."""
    if not os.access(workspace, os.R_OK | os.X_OK):
        return [], [f"workspace {workspace} is not readable by the bridge's user; Serena cannot index it"]
    chosen = languages or detect(workspace)
    notes = language_notes(workspace, chosen, settings.serena_venv_path, settings.serena_language_servers, image=image)
    if notes or chosen:
        return chosen, notes
    for _root, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        if files:
            return [], ["no source files of a language Serena knows: semantic tools find nothing; pattern search works"]
    return [], ["workspace is empty: no source files to index; pattern search and memory tools work"]
