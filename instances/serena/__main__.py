"""Entrypoint of a Serena instance: ``python -m instances.serena --venv V --port P --workspace W --home H``.

Writes the instance's private Serena home, then replaces itself (``os.execv``) with Serena's MCP server,
so the PID the runtime started is Serena itself. Used by the process runtime and the Docker image alike.
Serena is started through ``guarded.py`` (in Serena's venv, same process), which makes it refuse requests
without the ``PARADISE_INSTANCE_KEY`` this process got in its environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from instances.serena import warmup
from instances.serena.config import (
    guarded_serena_command,
    serena_environment,
    serena_executable,
    serena_home_dir,
    venv_executable,
    write_serena_home,
)
from instances.serena.languages import LanguageError, load_operator_servers
from instances.serena.project import chosen_languages, server_path_env

TS_LANGUAGES = {"typescript", "javascript"}


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m instances.serena", description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=env("PARADISE_SERENA_VENV"),
                        help="virtualenv holding serena-agent and pyright (default: $PARADISE_SERENA_VENV)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="listen port of the MCP endpoint /mcp")
    parser.add_argument("--workspace", type=Path, default=env("PARADISE_WORKSPACE"),
                        help="project directory to serve (default: $PARADISE_WORKSPACE)")
    parser.add_argument("--home", type=Path, default=env("PARADISE_SERENA_HOME"),
                        help="the instance's private $HOME; Serena's data goes to HOME/.serena")
    parser.add_argument("--log-dir", type=Path, default=None, help="where Serena writes its log files")
    parser.add_argument("--dashboard", action="store_true", help="enable Serena's web dashboard (extra port)")
    parser.add_argument("--languages", default=env("PARADISE_SERENA_LANGUAGES") or env("SERENA_LANGUAGES"),
                        help="comma-separated languages to serve (default: $SERENA_LANGUAGES, else detected in "
                        "the workspace)")
    parser.add_argument("--language-servers",
                        default=env("PARADISE_SERENA_LANGUAGE_SERVERS") or env("SERENA_LANGUAGE_SERVERS"),
                        help="TOML of language = \"/path/to/server\" for servers the packs do not ship")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("venv", "workspace", "home"):
        if getattr(args, name) is None:
            parser.error(f"--{name} is required")
    workspace = args.workspace.absolute()
    if not workspace.is_dir():
        parser.error(f"workspace is not a directory: {workspace}")
    venv = args.venv.absolute()
    for needed in (serena_executable(venv), venv_executable(venv, "python")):
        if not os.access(needed, os.X_OK):
            parser.error(f"Serena is not installed in {args.venv} (missing {needed})")
    command = guarded_serena_command(venv, args.host, args.port, workspace, dashboard=args.dashboard)

    try:
        languages = chosen_languages(workspace, args.languages)
        operator = load_operator_servers(args.language_servers)
    except LanguageError as exc:
        parser.error(str(exc))
    home = args.home.absolute()
    write_serena_home(home, serena_venv=venv, log_dir=args.log_dir, dashboard=args.dashboard,
                      workspace=workspace, languages=languages, operator_servers=operator)
    os.environ.update(serena_environment(home))
    # tsserver loads the workspace's projects at start (an implicit one when it has no jsconfig/tsconfig)
    configs = warmup.projects_to_open(serena_home_dir(home), workspace) if TS_LANGUAGES & set(languages) else []
    os.environ[warmup.ENV] = os.pathsep.join(map(str, configs))
    os.environ["PATH"] = server_path_env(operator)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606 - replace this process by Serena (same PID for the runtime)


if __name__ == "__main__":
    main()
