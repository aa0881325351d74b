"""Where the quality instance keeps its files: reports, the run history, coverage contexts, e2e artifacts.

In the workspace's `.paradise/` when the workspace is writable; that directory carries its own
`.gitignore` (`*`), so `git status` never shows it.  When the workspace cannot be written (a read-only
mount; a root-owned 0755 workspace in a container that rightly does not run as root), the files go to
the instance's own state instead: `$PARADISE_QUALITY_STATE`, else `/state` (containers), else `$HOME`
(the instance directory on the process runtime), one subdirectory per workspace.  Every reply that
names a file gives its path relative to the workspace when it is inside, else absolute."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import QualityError
from .workspace import Workspace

WORKSPACE_DIR = ".paradise"
STATE_ENV = "PARADISE_QUALITY_STATE"
CONTAINER_STATE = Path("/state")
GITIGNORE = "# written by the DevOps Paradise quality instance; nothing here belongs in git\n*\n"
NOT_WRITABLE_FIX = (
    "make the workspace writable for the instance's user, or give the instance a writable state directory "
    f"({STATE_ENV}, /state in containers, or $HOME)"
)


def _usable(directory: Path, gitignore: bool = False) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if gitignore and not (directory / ".gitignore").is_file():
            (directory / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def _state_candidates() -> list[Path]:
    found = [Path(p) for p in [os.environ.get(STATE_ENV)] if p]
    found += [CONTAINER_STATE] if CONTAINER_STATE.is_dir() else []
    home = os.environ.get("HOME")
    return found + ([Path(home) / ".paradise-quality"] if home else [])


def data_dir(ws: Workspace) -> Path:
    """The writable directory for this workspace's files (see the module docstring)."""
    inside = ws.root / WORKSPACE_DIR
    if _usable(inside, gitignore=True):
        return inside
    key = hashlib.sha256(str(ws.root).encode()).hexdigest()[:12]
    for base in _state_candidates():
        candidate = base / f"{ws.root.name or 'root'}-{key}"
        if _usable(candidate):
            return candidate
    raise QualityError("not_writable", f"neither {inside} nor a state directory can be written; {NOT_WRITABLE_FIX}")


def sub_dir(ws: Workspace, name: str, *, reading: bool = False) -> Path:
    """`name` under the data directory; for `reading`, where it would be even when nothing is writable."""
    try:
        return data_dir(ws) / name
    except QualityError:
        if reading:
            return ws.root / WORKSPACE_DIR / name
        raise


def permission_error(exc: OSError) -> dict[str, str]:
    """A tool's structured error for a file it could not write (never internal_error)."""
    path = exc.filename or "a file"
    return {
        "code": "not_writable",
        "message": f"cannot write {path}: {exc.strerror or exc}",
        "path": str(path),
        "fix": NOT_WRITABLE_FIX,
    }


def where_files_go(ws: Workspace) -> dict[str, object]:
    """What every reply says of the tool's files: the data directory (relative to the workspace when
    inside it, else absolute), or why nothing can be written and the fix."""
    try:
        directory = data_dir(ws)
    except QualityError as exc:
        return {"path": None, "reason": exc.message, "fix": NOT_WRITABLE_FIX}
    inside = directory.is_relative_to(ws.root)
    return {"path": ws.relative(str(directory)), "in_workspace": inside}
