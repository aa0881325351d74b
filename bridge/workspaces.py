"""Where a client's workspace may be, and proof before every start that it is still the registered directory.

A workspace is mounted read-write into the client's instances (and, under Docker, used as its owner's uid),
so choosing it is choosing what a tenant's code may change. The rules:

- it is resolved (symlinks followed) once, at registration, and must lie under one of
  ``PARADISE_WORKSPACE_ROOTS`` (default: the home directory of the user running the bridge, and ``$HOME``)
  or of the roots setup added to ``DATA_DIR/workspace-roots``;
- ``/``, system trees (``/etc``, ``/usr``, ``/bin``, ``/sbin``, ``/lib*``, ``/boot``, ``/dev``, ``/proc``,
  ``/sys``, ``/run``, ``/var/lib``, ``/var/log`` ...) and anything below them are always refused, whatever
  the roots say; shared parents (``/home``, ``/tmp``, ``/var``, ``/opt``, ``/srv``, ``/root`` ...) and the
  bridge user's home are refused as a whole (directories below them may be allowed by the roots);
- it may neither contain nor lie inside the bridge's data dir (admin token, database, instance homes);
- its identity (device, inode, owner) is recorded, and checked with the path before every start: a
  workspace deleted, replaced by a symlink, or swapped for another directory fails the start;
- its resolved path holds no control character (a directory named ``x\nINFO fake`` would forge log lines);
- it is neither another client's workspace, nor inside one, nor around one (409), unless the operator allows
  sharing (``PARADISE_SHARED_WORKSPACES``): one tenant's tests would otherwise change another's files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bridge.errors import Conflict, Invalid
from bridge.jsonlimits import control_character
from bridge.settings import BridgeSettings, bridge_user_home

# Never a workspace, nor anything below them: the system itself.
SYSTEM_TREES = tuple(
    Path(p)
    for p in (
        "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev", "/proc",
        "/sys", "/run", "/var/lib", "/var/log", "/var/run", "/var/spool", "/var/cache", "/var/mail",
        "/var/backups", "/snap", "/System", "/Library", "/private/etc", "/private/var/db",
    )
)
# Never a workspace as a whole (they hold other users' or the system's directories); below them, the roots decide.
SHARED_PARENTS = tuple(
    Path(p)
    for p in (
        "/home", "/tmp", "/var", "/var/tmp", "/opt", "/srv", "/mnt", "/media", "/root",  # noqa: S108 - listed to be refused
        "/Users", "/private", "/private/tmp", "/private/var", "/Volumes",
    )
)


class WorkspaceChanged(Exception):
    """The workspace is no longer the directory that was registered; the message says what changed."""


@dataclass(frozen=True)
class WorkspaceIdentity:
    """What makes a directory that one directory: the device and inode, and who owns it."""

    dev: int
    ino: int
    uid: int

    @classmethod
    def of(cls, info: os.stat_result) -> WorkspaceIdentity:
        return cls(dev=info.st_dev, ino=info.st_ino, uid=info.st_uid)

    def as_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> WorkspaceIdentity | None:
        """The stored identity, or None for a client registered before identities were recorded."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(dev=int(data["dev"]), ino=int(data["ino"]), uid=int(data["uid"]))
        except (KeyError, TypeError, ValueError):
            return None


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def location_problem(path: Path, *, roots: tuple[Path, ...], home: Path, data_dir: Path) -> str | None:
    """Why a resolved workspace path may not be used, or None when it may (pure: no file system access)."""
    bad = control_character(str(path))
    if bad is not None:
        return f"{str(path)!r} holds a control character ({bad}); rename the directory"
    if path == Path(path.anchor):
        return f"{path} is the root of the file system"
    for tree in SYSTEM_TREES:
        if _inside(path, tree):
            return f"{path} is a system directory (under {tree})"
    if path in SHARED_PARENTS:
        return f"{path} is a shared system directory; register a project directory below it"
    if path == home:
        return f"{path} is the bridge user's whole home directory (with its credentials); register a project in it"
    if _inside(path, data_dir) or _inside(data_dir, path):
        return f"{path} overlaps the bridge's data dir {data_dir} (admin token, database, instance homes)"
    roots = tuple(root for root in roots if root != Path(root.anchor))  # a home of "/" allows nothing
    if not any(_inside(path, root) for root in roots):
        allowed = os.pathsep.join(str(root) for root in roots)
        return (f"{path} is outside the workspace roots ({allowed}); let it in with `devops-paradise roots add "
                f"{path}` on the bridge's machine (or `devops-paradise setup CLIENT {path}`), or add it to "
                "PARADISE_WORKSPACE_ROOTS")
    return None


ROOTS_FILE = "workspace-roots"  # DATA_DIR/workspace-roots: roots added by setup or `devops-paradise roots add`


def added_roots(data_dir: Path) -> list[Path]:
    """The roots in the data dir's roots file (one directory a line, read on every check, so a root setup adds
    counts at once): only absolute directories the bridge user owns; anything else in it is ignored."""
    try:
        lines = (data_dir / ROOTS_FILE).read_text().splitlines()
    except OSError:
        return []
    roots = []
    for entry in (line.strip() for line in lines):
        if not os.path.isabs(entry):  # blank lines and comments too
            continue
        root = Path(entry).resolve()
        try:
            owned = root.is_dir() and root.stat().st_uid == os.getuid()
        except OSError:
            owned = False
        if owned and root != Path(root.anchor):
            roots.append(root)
    return roots


def workspace_roots(settings: BridgeSettings) -> tuple[Path, ...]:
    """Every root a workspace may lie under: PARADISE_WORKSPACE_ROOTS (or the homes) and the data dir's file."""
    return tuple(dict.fromkeys([*settings.workspace_root_paths, *added_roots(settings.data_dir)]))


def refuse_overlap(path: Path, others: Iterable[tuple[str, str]]) -> None:
    """409 (Conflict) when ``path`` is another client's workspace, lies inside one or contains one (pure).

    ``others`` are (client id, resolved workspace) pairs of the registered clients."""
    for client_id, theirs in others:
        other = Path(theirs)
        if path == other:
            relation = "is the workspace of"
        elif _inside(path, other):
            relation = "lies inside the workspace of"
        elif _inside(other, path):
            relation = "contains the workspace of"
        else:
            continue
        raise Conflict(
            f"workspace {path} {relation} client {client_id!r} ({other}): a tenant's code could change the other's "
            "files; register a directory of its own, or set PARADISE_SHARED_WORKSPACES=true to allow sharing",
            field="workspace", client_id=client_id,
        )


def _problem_under(settings: BridgeSettings, path: Path) -> str | None:
    return location_problem(
        path,
        roots=workspace_roots(settings),
        home=bridge_user_home().resolve(),
        data_dir=settings.data_dir.resolve(),
    )


def resolve_workspace(raw: str, settings: BridgeSettings) -> tuple[Path, WorkspaceIdentity]:
    """Registration: the resolved workspace and its identity, or 422 (Invalid) saying why not (blocking)."""
    try:
        return _resolve(raw, settings)
    except (OSError, RuntimeError) as exc:  # no home to expand ~ to, a name too long, a loop of links...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise Invalid(f"workspace {raw!r} cannot be used: {reason}", field="workspace") from None


def _resolve(raw: str, settings: BridgeSettings) -> tuple[Path, WorkspaceIdentity]:
    workspace = Path(raw).expanduser()
    if not workspace.is_absolute():
        raise Invalid(f"workspace must be an absolute path, got {raw!r}", field="workspace")
    if not workspace.exists():
        raise Invalid(f"workspace {workspace} does not exist", field="workspace")
    if not workspace.is_dir():
        raise Invalid(f"workspace {workspace} is not a directory", field="workspace")
    resolved = workspace.resolve(strict=True)
    problem = _problem_under(settings, resolved)
    if problem is not None:
        raise Invalid(f"workspace refused: {problem}", field="workspace")
    return resolved, WorkspaceIdentity.of(resolved.stat())


def verify_workspace(path: str, identity: WorkspaceIdentity | None, settings: BridgeSettings) -> None:
    """Before a start: the path is still the registered directory, allowed now; else WorkspaceChanged (blocking).

    ``identity`` is None for clients registered before identities were recorded: their path is still checked.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise WorkspaceChanged(f"workspace {path} no longer exists") from None
    except OSError as exc:
        raise WorkspaceChanged(f"workspace {path} cannot be checked: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise WorkspaceChanged(f"workspace {path} was replaced by a symlink to {os.readlink(path)}")
    if not stat.S_ISDIR(info.st_mode):
        raise WorkspaceChanged(f"workspace {path} is no longer a directory")
    now = os.path.realpath(path)
    if now != path:
        raise WorkspaceChanged(f"workspace {path} now leads to {now}: a directory above it was replaced by a symlink")
    if identity is not None:
        found = WorkspaceIdentity.of(info)
        if (found.dev, found.ino) != (identity.dev, identity.ino):
            raise WorkspaceChanged(
                f"workspace {path} was replaced by another directory (device:inode {found.dev}:{found.ino}, "
                f"registered {identity.dev}:{identity.ino}); register the client again to use it"
            )
        if found.uid != identity.uid:
            raise WorkspaceChanged(
                f"workspace {path} changed owner from uid {identity.uid} to uid {found.uid}; "
                "register the client again to use it"
            )
    problem = _problem_under(settings, Path(path))
    if problem is not None:
        raise WorkspaceChanged(f"workspace no longer allowed: {problem}")
