"""``devops-paradise roots add|list``: let a project directory outside the home be a workspace.

A bridge accepts a workspace under its roots (``PARADISE_WORKSPACE_ROOTS``, default the user's home). Projects
live elsewhere too (``/srv``, ``/opt``, ``/workspaces`` in a devcontainer, ``/mnt/c`` under WSL), so setup adds
the workspace it is given to ``DATA_DIR/workspace-roots``, which the bridge reads on every registration and
start (bridge/workspaces.py). Only a directory the user owns is added, and only when nothing but the roots
stands in its way: ``/``, system directories, shared parents (``/tmp`` as a whole), the whole home and the data
dir stay refused, and the bridge ignores an entry its user does not own.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bridge.cli.common import CliError, data_dir, emit
from bridge.settings import SettingsError, bridge_user_home, load_settings
from bridge.workspaces import ROOTS_FILE, added_roots, location_problem, workspace_roots


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def root_refusal(path: Path, state_dir: Path) -> str | None:
    """Why ``path`` (resolved) may not become a root, or None. The bridge's own rules with the path as the
    only root, plus: it must be a directory this user owns (another user's project is theirs to share)."""
    if not path.is_dir():
        return f"{path} is not a directory"
    if path.stat().st_uid != os.getuid():
        return f"{path} belongs to uid {path.stat().st_uid}, not to you (uid {os.getuid()}); its owner can add it"
    return location_problem(path, roots=(path,), home=bridge_user_home().resolve(), data_dir=state_dir.resolve())


def current_roots(state_dir: Path) -> tuple[Path, ...]:
    """The roots a bridge of this data dir uses, as far as this process's settings tell."""
    try:
        settings = load_settings(data_dir=state_dir)
    except SettingsError:
        return tuple(added_roots(state_dir))
    return workspace_roots(settings)


def add_root(raw: str | Path, state_dir: Path | None = None) -> tuple[Path, bool]:
    """Make the directory a workspace root: (resolved path, True when it was added, False when already
    allowed). Raises CliError saying why it may not be one."""
    state_dir = state_dir or data_dir()
    path = Path(raw).expanduser().absolute()
    if not path.exists():
        raise CliError(f"{path} does not exist")
    path = path.resolve()
    if refusal := root_refusal(path, state_dir):
        raise CliError(f"not added to the workspace roots: {refusal}")
    if any(_inside(path, root) for root in current_roots(state_dir)):
        return path, False
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / ROOTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write(f"{path}\n")
    return path, True


def cmd_roots_add(args: argparse.Namespace) -> None:
    path, added = add_root(args.path)
    text = f"added {path} to the workspace roots" if added else f"{path} is already under the workspace roots"
    emit(args, {"root": str(path), "added": added}, text)


def cmd_roots_list(args: argparse.Namespace) -> None:
    state_dir = data_dir()
    file_roots = set(added_roots(state_dir))
    rows = [{"root": str(root), "from": ROOTS_FILE if root in file_roots else "settings"}
            for root in current_roots(state_dir)]
    emit(args, rows, "\n".join(f"{row['root']}  ({row['from']})" for row in rows))


def add_roots_parsers(sub: Any) -> None:
    roots = sub.add_parser("roots", help="directories a workspace may lie under").add_subparsers(
        dest="roots_command", required=True
    )
    add = roots.add_parser("add", help="let workspaces in this directory (one you own) be registered")
    add.add_argument("path")
    add.set_defaults(func=cmd_roots_add)
    roots.add_parser("list", help="the roots a bridge of this data dir uses").set_defaults(func=cmd_roots_list)
