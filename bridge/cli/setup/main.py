"""``devops-paradise setup [CLIENT] [WORKSPACE] [PROFILE]``: one command from a checkout to Claude Code talking
to your own Serena and quality servers. ``start-devops-paradise.sh`` and ``scripts/start-devops-paradise.ps1``
only find a Python, make ``.venv`` and call this. The steps live in ``steps``; this module reads the
command line and the environment, and does the small actions (``--status``, ``--stop``, ``--remove``)."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import bridge.cli.setup.claude as setup_claude
from bridge.cli.common import AdminClient, CliError, show_client
from bridge.cli.host import stop_everything
from bridge.cli.setup.context import Reporter, SetupFailed, SetupOptions, SetupUsageError, program_name
from bridge.cli.setup.machine import live_pid, running_runtime
from bridge.cli.setup.steps import SetupRun

COMMAND_VARIABLE = "DEVOPS_PARADISE_SETUP_COMMAND"  # set by the wrappers: how the user started setup
CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
RUNTIMES = ("auto", "docker", "process")
REPO_DIR = Path(__file__).resolve().parents[3]

DESCRIPTION = """\
Sets up everything Claude Code needs to use your own Serena and quality MCP servers:
checks prerequisites, prepares the runtime (Docker images or Serena on this machine), starts the
bridge in the background, registers the client, writes WORKSPACE/.mcp.json, proves the path with a
real MCP initialize + tools/list, and registers both servers with Claude Code (local scope) when
`claude` is on PATH, then shows what `claude mcp list` says about them."""

ENVIRONMENT = """\
environment:
  PYTHON                  interpreter the wrapper uses to create .venv (default: newest python3.X >= 3.11)
  PARADISE_VENV           use this existing virtualenv instead of .venv; nothing is installed into it
                          and the checkout is put first on PYTHONPATH
  PARADISE_DATA_DIR       state, logs, pid file, tokens   (default: ~/.devops-paradise)
  PARADISE_SETUP_TIMEOUT  seconds to wait for the instances to be ready   (default: 600)
  PARADISE_BRIDGE_WAIT    seconds to wait for the bridge to answer /healthz  (default: 60)
  PARADISE_*              every other bridge setting (docs/configuration.md), e.g. PARADISE_PORT_RANGE,
                          PARADISE_SERENA_VENV"""


class _SetupArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SetupUsageError(message)


def command_name() -> str:
    return os.environ.get(COMMAND_VARIABLE) or "devops-paradise setup"


def setup_arguments() -> argparse.ArgumentParser:
    parser = _SetupArgumentParser(
        prog=command_name(), description=DESCRIPTION, epilog=ENVIRONMENT,
        usage="%(prog)s [options] [CLIENT_NAME] [WORKSPACE] [QUALITY_PROFILE]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("words", nargs="*", metavar="CLIENT_NAME WORKSPACE QUALITY_PROFILE",
                        help="client id, 1-40 of a-z 0-9 '-' (default: $(whoami)-<short host name>); project "
                             "directory Claude Code works in (default: the current directory); quick | python | "
                             "comprehensive (default: comprehensive)")
    parser.add_argument("--status", dest="action", action="store_const", const="status",
                        help="show the bridge and the client; change nothing")
    parser.add_argument("--stop", dest="action", action="store_const", const="stop",
                        help="stop the bridge and every instance (clients stay registered)")
    parser.add_argument("--remove", dest="action", action="store_const", const="remove",
                        help="delete the client, its instances and its token file (the bridge keeps running)")
    parser.add_argument("--runtime", default="", metavar="R", help="auto | docker | process (default: the last one "
                        "used, else auto = Docker when an engine answers and the images exist, else local processes)")
    parser.add_argument("--port", default="", metavar="N", help="port of the bridge (default: $PARADISE_PORT or 8100)")
    parser.add_argument("--show-token", action="store_true",
                        help="print the token itself in the export line (default: read from its file)")
    parser.add_argument("--yes", "-y", action="store_true",
                        help="answer every question with yes (no prompts; needed for --remove without a terminal)")
    # the global options of devops-paradise, accepted here too (setup has no JSON output of its own)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.set_defaults(action="setup", func=cmd_setup)
    return parser


def parse_setup_words(words: list[str]) -> argparse.Namespace:
    """The setup command line, options and the three positionals in any order (as the shell script took them;
    argparse's plain parse fills every optional positional at the first one it meets)."""
    try:
        args, unknown = setup_arguments().parse_known_intermixed_args(words)
        if unknown:
            raise SetupUsageError(f"unknown option {unknown[0]}")
        if len(args.words) > 3:
            raise SetupUsageError(f"too many arguments: {args.words[3]}")
    except SetupUsageError as exc:
        usage_exit(str(exc))
    return args


def usage_exit(message: str) -> NoReturn:
    print(f"{program_name(command_name())}: {message} (see --help)", file=sys.stderr)
    sys.exit(2)


def add_setup_parser(sub: Any) -> None:
    shell = sub.add_parser("setup", help="one command to a running bridge, a client and Claude Code configured",
                           add_help=False)

    def parse_known_args(args: list[str] | None = None, namespace: Any = None) -> tuple[argparse.Namespace, list]:
        return parse_setup_words(list(args or [])), []

    # The subcommand only names setup; its words are parsed by ``setup_arguments`` (intermixed, our messages).
    shell.parse_known_args = parse_known_args  # type: ignore[method-assign]


# ---- from the command line and the environment to SetupOptions ----------------------------------------


def default_client() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "user"
    host = socket.gethostname().split(".")[0] or "host"
    name = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", f"{user}-{host}".lower())).lstrip("-")[:40]
    return name or "paradise-user"


def seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        usage_exit(f"{variable} must be a number of seconds, got '{raw}'")
    if value <= 0:
        usage_exit(f"{variable} must be more than 0 seconds, got '{raw}'")
    return value


def resolve_options(args: argparse.Namespace) -> SetupOptions:
    words = [*args.words, "", "", ""]
    client = words[0] or default_client()
    if not CLIENT_ID.fullmatch(client):
        usage_exit(f"client name '{client}' is not valid: use 1-40 lower-case letters, digits and '-', starting "
                   "with a letter or digit")
    if args.runtime not in ("", *RUNTIMES):
        usage_exit("--runtime must be auto, docker or process")
    if args.port and not args.port.isdigit():
        usage_exit("--port needs a number")
    port_text = args.port or os.environ.get("PARADISE_PORT") or "8100"
    if not port_text.isdigit():
        usage_exit(f"the port must be a number, got '{port_text}'")
    if not 1 <= int(port_text) <= 65535:
        usage_exit("--port must be between 1 and 65535")
    data_dir = Path(os.environ.get("PARADISE_DATA_DIR") or "~/.devops-paradise").expanduser().absolute()
    given_venv = os.environ.get("PARADISE_VENV") or None
    return SetupOptions(
        action=args.action, client=client, workspace=Path(words[1] or ".").expanduser().absolute(),
        profile=words[2] or "comprehensive", runtime_arg=args.runtime, port=int(port_text),
        show_token=args.show_token, assume_yes=args.yes, data_dir=data_dir, repo_dir=REPO_DIR,
        command=command_name(), setup_timeout=seconds("PARADISE_SETUP_TIMEOUT", 600),
        bridge_wait=seconds("PARADISE_BRIDGE_WAIT", 60),
        given_venv=str(Path(given_venv).absolute()) if given_venv else None,
    )


def prepare_places(o: SetupOptions) -> Reporter:
    """Export where the bridge is for every piece setup reuses (and the bridge it starts); make the data dir."""
    os.environ.update(PARADISE_DATA_DIR=str(o.data_dir), PARADISE_PORT=str(o.port), PARADISE_URL=o.bridge_url)
    # Loopback never goes through a proxy (the bridge, the CLI and the checks all talk to 127.0.0.1).
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get(name)]))
    new = not o.data_dir.is_dir()
    try:
        o.data_dir.mkdir(parents=True, exist_ok=True)
        if new:
            o.data_dir.chmod(0o700)
        if not os.access(o.data_dir, os.W_OK):
            raise PermissionError
    except OSError:
        print(f"{o.prog}: error: the data directory {o.data_dir} cannot be created or written; set "
              "PARADISE_DATA_DIR to a writable place.", file=sys.stderr)
        sys.exit(1)
    report = Reporter(o, log_path=o.setup_log)
    report.log("")
    report.log(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} {o.prog} {o.action} client={o.client}")
    return report


def cmd_setup(args: argparse.Namespace) -> int:
    options = resolve_options(args)
    os.environ.pop(COMMAND_VARIABLE, None)  # for us only, not for the bridge we start
    report = prepare_places(options)
    action = {"status": show_status, "stop": stop_all, "remove": remove_client}.get(options.action)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return action(options, report) if action else SetupRun(options, report).run()
    except SetupFailed as exc:
        return report.finish_failed(str(exc))
    except KeyboardInterrupt:
        return report.finish_failed("interrupted; everything this run had half-made was undone.")
    except Exception as exc:  # a bug or an OS error: still undo, still one sentence; the traceback goes to the log
        report.log(traceback.format_exc())
        return report.finish_failed(f"unexpected error: {exc.__class__.__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# ---- the other actions -----------------------------------------------------------------------------------


def show_status(o: SetupOptions, report: Reporter) -> int:
    runtime = running_runtime(o.bridge_url)
    if runtime is None:
        print(f"bridge: not running at {o.bridge_url} (data dir {o.data_dir})")
        return 1
    print(f"bridge: running at {o.bridge_url} (pid {live_pid(o.pid_file) or '?'}, runtime {runtime}, "
          f"log {o.bridge_log})\n")
    try:
        client = AdminClient(o.bridge_url).client(o.client)
    except CliError as exc:
        print(f"client {o.client}: {exc}")
        return 1
    print(show_client(client))
    has_token = o.token_file.is_file() and o.token_file.stat().st_size > 0
    print(f"\ntoken file {o.token_file}" if has_token else f"\nno token file ({o.token_file})")
    return 0


def stop_all(o: SetupOptions, report: Reporter) -> int:
    print("stopping the bridge and its instances (clients stay registered)", flush=True)
    try:
        for line in stop_everything():
            report.say(line)
    except CliError as exc:
        raise report.fail(f"stopping failed: {exc}") from None
    return 0


def remove_client(o: SetupOptions, report: Reporter) -> int:
    if running_runtime(o.bridge_url) is None:
        raise report.fail(f"the bridge is not running at {o.bridge_url}; start it with {o.command} (or the same "
                          "command without --remove), then remove the client.")
    if not o.assume_yes and not sys.stdin.isatty():
        raise report.fail(f"--remove deletes client {o.client}; add --yes to confirm when there is no terminal.")
    if not report.confirm(f"Delete client {o.client}, its instances and its token?", False):
        print("nothing removed")
        return 0
    admin = AdminClient(o.bridge_url)
    try:
        client = admin.client(o.client)
        names = list(admin.mcp_config(o.client).mcpServers)
        admin.delete_client(o.client)
    except CliError as exc:
        raise report.fail(f"removing client {o.client} failed: {exc}") from None
    o.token_file.unlink(missing_ok=True)
    print(f"deleted {o.client} (instances stopped, ports released)")
    print(f"token file {o.token_file} deleted; the bridge keeps running (stop it with --stop).")
    claude = setup_claude.claude_command()
    if claude and Path(client.workspace).is_dir():
        try:
            gone = setup_claude.unregister(claude, Path(client.workspace), names)
        except setup_claude.ClaudeCodeError as exc:
            report.warn(f"could not remove the servers from Claude Code: {exc}")
        else:
            if gone:
                print(f"removed {', '.join(gone)} from Claude Code (local scope of {client.workspace}).")
    print("the workspace's .mcp.json still lists paradise-serena and paradise-quality: remove them or run the "
          "setup again.")
    return 0
