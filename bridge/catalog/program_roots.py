"""The package root of each program a command names, so the process sandbox mounts that package whole.

A command of one's own such as ``["/opt/x/node", "/opt/srv/node_modules/.bin/tsx", "/opt/srv/server.ts"]``
names files, and the sandbox mounts exactly the paths a command or its environment names: a symlinked bin
became a lone file there and its package's other files were absent (``ERR_MODULE_NOT_FOUND``). So the instance's
environment gets ``PARADISE_PACKAGE_ROOTS``: for each named file, the nearest directory above it holding
``package.json``, ``pyproject.toml`` or ``pyvenv.cfg``. Named there, the sandbox mounts it read-only and whole,
its symlinks kept as symlinks.

A root is never a directory that holds the workspace or the data dir, anyone's home directory, a shared parent
(``/opt``, ``/srv``, ``/tmp``...) or a system tree, and never lies inside the workspace (mounted writable
already): such a file keeps today's mount of itself alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bridge.settings import bridge_user_home
from bridge.workspaces import SHARED_PARENTS, SYSTEM_TREES

ENV = "PARADISE_PACKAGE_ROOTS"
MARKERS = ("package.json", "pyproject.toml", "pyvenv.cfg")
MAX_UP = 8  # directories looked at above a named file
HOME_PARENTS = (Path("/home"), Path("/Users"))  # a directory right below one is someone's home


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _nearest_root(start: Path) -> Path | None:
    for candidate in [start, *start.parents][:MAX_UP]:
        if any((candidate / marker).is_file() for marker in MARKERS):
            return candidate
    return None


def _allowed(root: Path, workspace: Path, data_dir: Path) -> bool:
    homes = {bridge_user_home().resolve(), Path.home().resolve()}
    return not (
        root == Path(root.anchor) or root in SHARED_PARENTS or root in homes or root.parent in HOME_PARENTS
        or any(_inside(root, tree) for tree in SYSTEM_TREES)
        or _inside(workspace, root) or _inside(data_dir, root) or _inside(root, workspace)
    )


def package_roots(parts: Iterable[str], workspace: Path, data_dir: Path) -> list[str]:
    """The package roots of the files among ``parts`` (a rendered command), as the sandbox may mount them."""
    workspace, data_dir = workspace.resolve(), data_dir.resolve()
    roots: dict[Path, None] = {}
    for part in parts:
        if not os.path.isabs(part) or not os.path.isfile(part):
            continue
        named = Path(os.path.normpath(part))
        for start in dict.fromkeys((named.parent, named.resolve().parent)):
            root = _nearest_root(start)
            if root is not None and _allowed(root.resolve(), workspace, data_dir):
                roots[root] = None
    return [str(root) for root in roots]


def roots_env(parts: Iterable[str], workspace: Path, data_dir: Path) -> dict[str, str]:
    roots = package_roots(parts, workspace, data_dir)
    return {ENV: os.pathsep.join(roots)} if roots else {}
