"""The ``devops-paradise`` command. Most subcommands talk to a running bridge over its admin API; ``serve`` is
the bridge, and ``roots`` and ``catalog`` write the data dir the bridge reads on every registration.

Subcommands live in one module per area (``clients``, ``host``, ``roots``, ``catalog``, ``setup``); ``common``
holds what they share.
Global options (``--json``, ``--url``) are accepted before or after the subcommand.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bridge.cli.catalog import add_catalog_parsers
from bridge.cli.clients import add_client_parsers, add_mcp_config_parser
from bridge.cli.common import CliError
from bridge.cli.host import add_host_parsers
from bridge.cli.rollout import add_rollout_parsers
from bridge.cli.roots import add_roots_parsers
from bridge.settings import SettingsError


def cmd_serve(args: argparse.Namespace) -> None:
    from bridge.app import run
    from bridge.settings import load_settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "runtime": args.runtime,
                                   "data_dir": args.data_dir}.items() if v is not None}
    settings = load_settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(settings, upgrade=args.upgrade)


def global_options() -> argparse.ArgumentParser:
    """Options every subcommand takes, before or after its name (SUPPRESS: a later default never wins)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    common.add_argument("--url", default=argparse.SUPPRESS, help="the bridge (default: PARADISE_URL, "
                        "else PARADISE_HOST/PARADISE_PORT, else http://127.0.0.1:8100)")
    return common


class _Sub:
    """Adds the global options to every subparser, however deep, so they work anywhere on the line."""

    def __init__(self, action: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
        self.action = action
        self.parents = parents

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        parser = self.action.add_parser(name, parents=self.parents, **kwargs)  # type: ignore[arg-type]
        original = parser.add_subparsers

        def add_subparsers(**kw: object) -> _Sub:
            return _Sub(original(**kw), self.parents)  # type: ignore[arg-type]

        parser.add_subparsers = add_subparsers  # type: ignore[method-assign]
        return parser


def parser() -> argparse.ArgumentParser:
    parents = [global_options()]
    top = argparse.ArgumentParser(
        prog="devops-paradise", description="Your own MCP servers, per client.", parents=parents
    )
    sub = _Sub(top.add_subparsers(dest="command", required=True), parents)
    serve = sub.add_parser("serve", help="run the bridge in the foreground")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--runtime", choices=["auto", "docker", "process", "swarm"])
    serve.add_argument("--data-dir")
    serve.add_argument("--upgrade", action="store_true", help="take over from the bridge running on this data dir "
                       "with no request lost (it hands its listening socket over, drains and exits)")
    serve.set_defaults(func=cmd_serve)
    add_client_parsers(sub)
    add_mcp_config_parser(sub)
    add_host_parsers(sub)
    add_roots_parsers(sub)
    add_catalog_parsers(sub)
    add_rollout_parsers(sub)
    from bridge.cli.setup.main import add_setup_parser

    add_setup_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.__dict__.setdefault("json", False)
    if getattr(args, "url", None):
        os.environ["PARADISE_URL"] = args.url
    try:
        status = args.func(args)
    except CliError as exc:
        print(f"devops-paradise: {exc}", file=sys.stderr)
        return exc.exit_status
    except SettingsError as exc:
        print(f"devops-paradise: {exc}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
