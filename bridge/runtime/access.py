"""Can an instance's uid read its workspace? Answered from mode bits and POSIX ACLs, before it starts.

An instance that cannot read its workspace does not fail by itself: Serena indexes nothing and answers every
symbol query with ``[]``. So the runtimes ask here first and refuse to start with a sentence that says which
path, which uid and what to do. Instances run without capabilities (no CAP_DAC_OVERRIDE, even as root in a
user namespace), so the plain POSIX check is the kernel's answer; there is deliberately no root shortcut.

The ACL comes from the ``system.posix_acl_access`` extended attribute (Linux's on-disk layout, read with
``os.getxattr``, no dependency): a little-endian u32 version (2), then 8-byte entries of u16 tag, u16 perm
and u32 id.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

READ, WRITE, EXECUTE = 4, 2, 1
ACL_XATTR = "system.posix_acl_access"
ACL_VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ENTRY = struct.Struct("<HHI")
_HEADER = struct.Struct("<I")


@dataclass(frozen=True)
class AclEntry:
    tag: int
    perm: int
    id: int | None = None  # only USER and GROUP entries name an id


@dataclass(frozen=True)
class Who:
    """The credentials an instance runs with."""

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()

    @property
    def gids(self) -> frozenset[int]:
        return self.groups | {self.gid}


def parse_acl(raw: bytes) -> list[AclEntry]:
    """The entries of a ``system.posix_acl_access`` value; ValueError when it is not that layout."""
    if len(raw) < _HEADER.size or (len(raw) - _HEADER.size) % _ENTRY.size:
        raise ValueError(f"an ACL of {len(raw)} bytes is not a version-2 POSIX ACL")
    (version,) = _HEADER.unpack_from(raw)
    if version != ACL_VERSION:
        raise ValueError(f"POSIX ACL version {version} is not {ACL_VERSION}")
    entries = []
    for offset in range(_HEADER.size, len(raw), _ENTRY.size):
        tag, perm, ident = _ENTRY.unpack_from(raw, offset)
        entries.append(AclEntry(tag, perm & 7, ident if tag in (USER, GROUP) else None))
    return entries


def permits(mode: int, owner: int, group: int, who: Who, want: int, acl: Iterable[AclEntry] = ()) -> bool:
    """POSIX.1e access check (what the kernel does without capabilities): owner, named user, any matching
    group entry, other; the ACL mask caps named users and every group entry."""
    entries = list(acl)
    if not entries:  # plain mode bits
        if who.uid == owner:
            bits = mode >> 6
        elif group in who.gids:
            bits = mode >> 3
        else:
            bits = mode
        return bits & want == want
    mask = next((e.perm for e in entries if e.tag == MASK), 7)
    if who.uid == owner:
        return _perm(entries, USER_OBJ) & want == want
    named = [e for e in entries if e.tag == USER and e.id == who.uid]
    if named:
        return named[0].perm & mask & want == want
    groups = [e for e in entries if (e.tag == GROUP_OBJ and group in who.gids) or (e.tag == GROUP and e.id in who.gids)]
    if groups:  # a matching group that lacks the bits denies: "other" is not consulted then
        return any(e.perm & mask & want == want for e in groups)
    return _perm(entries, OTHER) & want == want


def _perm(entries: list[AclEntry], tag: int) -> int:
    return next((e.perm for e in entries if e.tag == tag), 0)


def read_acl(path: Path) -> list[AclEntry]:
    """The access ACL of ``path``; none when the file system has no ACLs or the file has only mode bits."""
    try:
        return parse_acl(os.getxattr(path, ACL_XATTR, follow_symlinks=True))
    except (OSError, ValueError):  # ENODATA (no ACL), ENOTSUP (no xattrs here): the mode bits decide
        return []


def can_access(path: Path, who: Who, want: int) -> bool:
    info = os.stat(path)
    return permits(stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, who, want, read_acl(path))


def unreadable_workspace(workspace: os.PathLike[str], who: Who, *, parents: bool) -> str | None:
    """None when ``who`` can list and enter ``workspace`` (and, with ``parents``, pass through every parent
    directory); else one sentence naming the path, the uid and the fix.

    ``parents`` is for a sandbox that reaches the workspace by its host path. A container gets it as a bind
    mount that the engine (root) resolves, so only the workspace directory itself counts there.
    """
    top = Path(os.path.abspath(workspace))
    try:
        if parents:
            for parent in reversed(top.parents):
                if not can_access(parent, who, EXECUTE):
                    return _refusal(top, who, parent, "x", f"cannot reach the workspace {top} through {parent}")
        if not can_access(top, who, READ | EXECUTE):
            return _refusal(top, who, top, "rx", f"cannot read the workspace {top}")
    except FileNotFoundError:
        return None  # the workspace check at registration and start says that, in its own words
    except PermissionError:  # the bridge itself cannot look; the instance, with no more rights, cannot read it
        return _refusal(top, who, top, "rx", f"cannot read the workspace {top}")
    return None


def _refusal(top: Path, who: Who, blocked: Path, bits: str, what: str) -> str:
    other = "o+x" if bits == "x" else "o+rx"
    return (
        f"the instance runs as uid {who.uid} and {what}; "
        f"fix it with `chmod {other} {blocked}` or `setfacl -m u:{who.uid}:{bits} {blocked}`"
        f"{' (and the same for the files inside: setfacl -R)' if blocked == top else ''}, "
        "or run the bridge as the workspace's owner"
    )


def user_of(spec_user: str) -> Who:
    """The ``uid:gid`` string a container runs as (engine.workspace_user) as credentials; a numeric user
    has no supplementary groups in our images."""
    uid, _, gid = spec_user.partition(":")
    return Who(int(uid), int(gid or uid))


def bridge_user() -> Who:
    """The host credentials of a sandbox: an unprivileged user namespace maps its uid back to the bridge's,
    keeping the bridge's supplementary groups."""
    return Who(os.getuid(), os.getgid(), frozenset(os.getgroups()))


# Directories a search skips as ignored in most projects: files only there are no sign of a visible workspace.
_IGNORED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "build", "dist", "target"})


def has_content(workspace: os.PathLike[str], limit: int = 500) -> bool:
    """The workspace holds a non-empty file outside hidden and commonly ignored directories, looked for in at
    most ``limit`` entries: then an instance that can read it must find something in it."""
    seen = 0
    for root, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _IGNORED_DIRS]
        for name in files:
            seen += 1
            with contextlib.suppress(OSError):
                if not name.startswith(".") and os.stat(os.path.join(root, name)).st_size > 0:
                    return True
        seen += len(dirs)
        if seen > limit:
            return False
    return False
