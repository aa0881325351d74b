"""Serena's MCP server behind the instance key: ``<serena venv>/bin/python guarded.py start-mcp-server ...``.

Serena builds and runs its own server (``serena start-mcp-server`` ends in ``MCPServer.run``), so the key
check cannot be added from outside. This launcher runs in Serena's virtualenv, in Serena's own process
(``instances.serena`` exec's it, so the PID the runtime started is still Serena), and before handing over
to Serena's command line it wraps every app ``MCPServer.streamable_http_app`` returns in
``instances.keyguard``'s middleware. That method is the narrowest patch point: the SDK's streamable-http
``run`` builds its app there and passes it straight to uvicorn, and nothing else in this process calls it.
Serena's opt-in web dashboard is a separate server and is not covered (it is off unless asked for).

It is run by file path, not ``-m``, because Serena's venv cannot import this project: only the
``instances`` package (standard library only) is loaded, from the directory this file sits in, and nothing
else of the project or of the bridge's environment is put on Serena's ``sys.path``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SERVER_NAME = "serena instance"
_INSTANCES_DIR = Path(__file__).resolve().parents[1]


def load_keyguard() -> ModuleType:
    """``instances.keyguard``, importing the ``instances`` package from this checkout if it is not yet."""
    if "instances" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "instances", _INSTANCES_DIR / "__init__.py", submodule_search_locations=[str(_INSTANCES_DIR)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load the instances package from {_INSTANCES_DIR}")
        package = importlib.util.module_from_spec(spec)
        sys.modules["instances"] = package
        spec.loader.exec_module(package)
    return importlib.import_module("instances.keyguard")


def guard_streamable_http_apps(server_class: type, key: str | None, keyguard: ModuleType) -> None:
    """Make ``server_class.streamable_http_app`` return its app behind the key check (this process only)."""
    build_app = server_class.streamable_http_app

    @functools.wraps(build_app)
    def guarded_streamable_http_app(self: Any, *args: Any, **kwargs: Any) -> Any:
        return keyguard.guard(build_app(self, *args, **kwargs), key, server_name=SERVER_NAME)

    server_class.streamable_http_app = guarded_streamable_http_app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # Run as a script, Python put this file's directory first on sys.path: its config.py would shadow any
    # top-level ``config`` module Serena's dependencies import.
    if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    keyguard = load_keyguard()
    try:
        # Out of the environment before Serena starts anything (language servers, shell tools).
        key = keyguard.take_instance_key()
    except keyguard.InstanceKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

    from mcp.server.mcpserver.server import MCPServer  # Serena's SDK, from Serena's venv
    from serena.cli import top_level

    guard_streamable_http_apps(MCPServer, key, keyguard)
    warmup = importlib.import_module("instances.serena.warmup")  # servers ready at start (instances/serena/warmup.py)
    warmup.patch_serena(os.environ.pop(warmup.ENV, None))
    top_level.main(args=args, prog_name="serena")  # click: exits with Serena's status


if __name__ == "__main__":
    main()
