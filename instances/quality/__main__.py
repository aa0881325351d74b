"""python -m instances.quality --host 127.0.0.1 --port P --workspace DIR [--profile NAME] [--profiles FILE]"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import anyio
import uvicorn

from instances.keyguard import InstanceKeyError, guard, take_instance_key

from .core.errors import QualityError
from .core.profiles import load_profiles, pick_profile
from .core.workspace import Workspace
from .server.server import build_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m instances.quality",
        description="The quality MCP server (Streamable HTTP at /mcp).",
        allow_abbrev=False,  # --profile and --profiles must never be confused
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--workspace",
        default=os.environ.get("PARADISE_WORKSPACE"),
        help="project directory (default: $PARADISE_WORKSPACE)",
    )
    parser.add_argument("--profiles", type=Path, default=None, help="profiles TOML file replacing the built-in one")
    parser.add_argument(
        "--profile",
        default=os.environ.get("PARADISE_PROFILE") or None,
        help="profile used when a tool call names none (default: $PARADISE_PROFILE, else 'python')",
    )
    parser.add_argument("--path", default="/mcp", help="MCP endpoint path (default /mcp)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        # Taken out of the environment first, before any tool can run the tenant's code in a child process.
        key = take_instance_key()
    except InstanceKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.workspace:
        print("error: no workspace: pass --workspace DIR or set PARADISE_WORKSPACE", file=sys.stderr)
        return 2
    try:
        ws = Workspace.open(args.workspace)
        profiles = load_profiles(args.profiles)
        default_profile = pick_profile(profiles, args.profile).name
    except QualityError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    server = build_server(ws, profiles, default_profile)
    server.settings.log_level = args.log_level
    print(
        f"quality instance: workspace {ws.root}, profiles {sorted(profiles)} (default {default_profile}), "
        f"listening on http://{args.host}:{args.port}{args.path}",
        file=sys.stderr,
        flush=True,
    )
    # What MCPServer.run("streamable-http") does, with the app behind the instance key check. ``host`` goes
    # to the app too: the SDK derives its DNS-rebinding protection (allowed Host headers) from it.
    app = server.streamable_http_app(streamable_http_path=args.path, host=args.host)
    config = uvicorn.Config(
        guard(app, key, server_name="quality instance"),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
    )
    anyio.run(uvicorn.Server(config).serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
