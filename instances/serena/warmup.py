"""The language servers ready at start-up, and JavaScript without a jsconfig.json of its own.

Four things Serena 2.1.0 leaves to the first query, done here so that query does not pay for them:

* **A project for JS/TS without a config.** Without a ``jsconfig.json`` or ``tsconfig.json``, tsserver puts each
  opened file in an inferred project of its own and its imports; Serena opens one file per query, so
  ``find_referencing_symbols`` found no caller in another file. The workspace is the client's, so the instance
  writes the jsconfig into its private Serena home instead (``implicit_config``: every JS/TS file of the
  workspace by absolute pattern, nothing emitted or type-checked).
* **The projects loaded at start.** Serena's process (``guarded.py`` calls ``patch_serena``) hands tsserver the
  workspace's own configs (or that implicit one) as soon as the server is up, through typescript-language-
  server's ``typescript.tsserverRequest`` command and tsserver's ``openExternalProject`` (a tsconfig/jsconfig
  among an external project's root files is loaded as a configured project, synchronously). Files those
  projects include belong to them, and the first reference query no longer waits Serena's 5 s grace for an
  indexing that already happened.
* **A first file read by each server at start.** A server's first document-symbol request pays for its first
  analysis (pyright and tsserver: over a second each); Serena starts the workspace's servers side by side but
  asks them one after the other, so a Python + TypeScript repository paid both in its first ``find_symbol``.
  Each server now reads one file of its language right after it starts (``_then_read_one``), in its own start
  thread, so those costs overlap (and the file's symbols are cached).
* **Bash ready when it says so.** Serena waits for bash-language-server to log "Analyzing" or "analysis
  complete"; 5.6.0 logs "BackgroundAnalysis: Completed", so every start waited the full 3 s timeout, and the
  first reference query slept Serena's 2 s for servers without such a signal.

``projects_to_open`` and the writer are standard library only (the bridge imports this package);
``patch_serena`` runs in Serena's virtualenv and imports Serena's solidlsp lazily. A failure there is logged,
never raised: the servers then behave as Serena's own.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

ENV = "PARADISE_SERENA_TS_PROJECTS"  # the configs tsserver loads at start, os.pathsep-joined
CONFIG_NAMES = ("tsconfig.json", "jsconfig.json")
SOURCES = ("js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts")
EXCLUDED_DIRS = ("node_modules", "dist", "build", "coverage", "vendor")  # tsserver's ** skips dot directories
MAX_PROJECTS = 8  # more configs than this: tsserver loads them on demand, as Serena would
MAX_DIRS = 5000  # the walk for the workspace's configs stops here
BASH_DONE = "BackgroundAnalysis: Completed"
log = logging.getLogger(__name__)


def own_configs(workspace: Path) -> list[Path] | None:
    """The workspace's tsconfig/jsconfig files, shallowest first; None when there are more than MAX_PROJECTS
    (or the walk was cut short), so nobody assumes they are all loaded."""
    found: list[Path] = []
    for count, (root, dirs, files) in enumerate(os.walk(workspace)):
        if count >= MAX_DIRS:
            return None
        dirs[:] = sorted(d for d in dirs if d not in EXCLUDED_DIRS and not d.startswith("."))
        found += [Path(root) / name for name in CONFIG_NAMES if name in files]
    if len(found) > MAX_PROJECTS:
        return None
    return sorted(found, key=lambda path: len(path.parts))


def implicit_config(workspace: Path) -> dict[str, Any]:
    """A jsconfig over ``workspace`` from outside it: absolute patterns, nothing emitted, nothing checked."""
    root = str(Path(workspace).absolute()).replace("\\", "/")
    return {
        "compilerOptions": {"allowJs": True, "checkJs": False, "noEmit": True, "skipLibCheck": True,
                            "module": "preserve", "target": "esnext", "maxNodeModuleJsDepth": 0},
        "include": [f"{root}/**/*.{ext}" for ext in SOURCES],
        "exclude": [f"{root}/**/{name}" for name in EXCLUDED_DIRS],
    }


def implicit_path(serena_home: Path) -> Path:
    return Path(serena_home) / "js-project" / "jsconfig.json"


def projects_to_open(serena_home: Path, workspace: Path) -> list[Path]:
    """The configs tsserver should load at start: the workspace's own, else an implicit one written into
    ``serena_home`` (removed again once the workspace has its own); empty when there are too many to load."""
    implicit = implicit_path(serena_home)
    configs = own_configs(workspace)
    if configs != []:
        implicit.unlink(missing_ok=True)
        return configs or []
    implicit.parent.mkdir(parents=True, exist_ok=True)
    tmp = implicit.with_name(implicit.name + ".tmp")
    tmp.write_text(json.dumps(implicit_config(workspace), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, implicit)
    return [implicit]


def open_request(configs: list[Path]) -> dict[str, Any]:
    """The LSP ``workspace/executeCommand`` params that make tsserver load ``configs`` as projects."""
    project = {"projectFileName": str(configs[0].parent / "paradise-warm-projects"),
               "rootFiles": [{"fileName": str(path)} for path in configs], "options": {}}
    return {"command": "typescript.tsserverRequest", "arguments": ["openExternalProject", project, {}]}


def patch_serena(configs: str | None) -> None:
    """In Serena's process, before it starts anything: tsserver loads ``configs`` (os.pathsep-joined) once it
    is up, and the Bash server is ready when its analysis completes."""
    from solidlsp.language_servers.bash_language_server import BashLanguageServer
    from solidlsp.language_servers.typescript_language_server import TypeScriptLanguageServer
    from solidlsp.ls import SolidLanguageServer

    if configs:
        paths = [Path(part) for part in configs.split(os.pathsep) if part]
        TypeScriptLanguageServer._start_server = _then_open(TypeScriptLanguageServer._start_server, paths)
    BashLanguageServer._start_server = _ready_on_analysis(BashLanguageServer._start_server)
    SolidLanguageServer.start = _then_read_one(SolidLanguageServer.start)


def first_source_file(server: Any) -> str | None:
    """A file of the server's language in its workspace (relative path), skipping what Serena ignores."""
    root, matcher = server.repository_root_path, server.get_source_fn_matcher()
    for count, (folder, dirs, files) in enumerate(os.walk(root)):
        if count >= MAX_DIRS:
            return None
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not server.is_ignored_dirname(d))
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(folder, name), root)
            if matcher.is_relevant_filename(name) and not server.is_ignored_path(relative):
                return relative
    return None


def _then_read_one(start: Any) -> Any:
    @functools.wraps(start)
    def start_then_read_one(self: Any) -> Any:
        started = start(self)
        try:
            if (relative := first_source_file(self)) is not None:
                self.request_document_symbols(relative)
                log.info("%s read %s at start", type(self).__name__, relative)
        except Exception as exc:  # a warm-up only: the first query does the work instead
            log.warning("%s could not read a first file at start: %s", type(self).__name__, exc)
        return started

    return start_then_read_one


def _then_open(start: Any, configs: list[Path]) -> Any:
    @functools.wraps(start)
    def start_then_open(self: Any) -> None:
        start(self)
        try:
            self.server.send.execute_command(open_request(configs))
        except Exception as exc:  # Serena's request layer raises its own types
            log.warning("tsserver could not load %s at start: %s", configs, exc)
            return
        # Loaded synchronously above: the first reference query has nothing left to wait for.
        self._has_waited_for_cross_file_references = True
        log.info("tsserver loaded its projects at start: %s", ", ".join(map(str, configs)))

    return start_then_open


def _ready_on_analysis(start: Any) -> Any:
    @functools.wraps(start)
    def start_ready_on_analysis(self: Any) -> None:
        register = self.server.on_notification

        def on_notification(method: str, handler: Any) -> None:
            if method == "window/logMessage":
                handler = _also_ready(handler, self)
            register(method, handler)

        self.server.on_notification = on_notification
        try:
            start(self)
        finally:
            del self.server.on_notification  # the instance attribute goes; the class's method is back

    return start_ready_on_analysis


def _also_ready(handler: Any, server: Any) -> Any:
    def on_log_message(message: dict) -> None:
        handler(message)
        if BASH_DONE in str(message.get("message", "")) and not server.server_ready.is_set():
            log.info("bash-language-server finished its analysis: ready")
            server._has_waited_for_cross_file_references = True  # every file analysed: no 2 s wait either
            server.server_ready.set()

    return on_log_message
