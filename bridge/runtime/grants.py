"""What a root bridge grants a sandbox's unprivileged host uid, so it can run without being root.

With a root bridge, every client's sandboxes run as a host uid of their own from ``PARADISE_SANDBOX_UIDS``
(never root: a file a tenant makes is never root's, a setuid bit gives nothing, ``/proc/sys`` is not
writable). bubblewrap then runs as that uid, and its bind mounts are resolved with its rights, so that uid
must reach what the sandbox shows:

* the Python, the project and the other read-only sources: every directory on the way to them must be
  passable (``x``). Where one is not (``/root`` is 0700), the group shared by all sandboxes (the range's
  first id) gets ``x`` on it through a POSIX ACL: passing through, never listing nor reading;
* the workspace, read-write: the client's uid gets ``rwX`` on it and its files through an access ACL and a
  default ACL (so new files keep it). Skipped when the workspace already grants it;
* its run directory (the socket), owned by that uid.

Which uid a client has is kept in ``DATA_DIR/sandbox-uids.json``, so a restarted bridge gives the same one.
``setfacl`` (Debian's ``acl``) does the ACLs; without it the start is refused with the command to run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from bridge.runtime.access import EXECUTE, READ, WRITE, Who, can_access
from bridge.runtime.base import RuntimeOperationError

UIDS_FILE = "sandbox-uids.json"


class SandboxUids:
    """One host uid per client from a range; the range's first id is the group all sandboxes share."""

    def __init__(self, data_dir: Path, first: int, last: int) -> None:
        if first <= 0 or last <= first:
            raise ValueError(f"PARADISE_SANDBOX_UIDS {first}-{last} is not a range of unprivileged ids")
        self.path = data_dir / UIDS_FILE
        self.group = first
        self.first, self.last = first + 1, last
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, data_dir: Path, spec: str) -> SandboxUids:
        first, _, last = spec.partition("-")
        return cls(data_dir, int(first), int(last or first))

    def _read(self) -> dict[str, int]:
        try:
            return {str(k): int(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def who(self, client_id: str) -> Who:
        """The client's credentials, allocating its uid on first use (one start at a time: the instances of
        one client start at once, in worker threads, and must get the same uid)."""
        with self._lock:
            return self._who(client_id)

    def _who(self, client_id: str) -> Who:
        taken = self._read()
        uid = taken.get(client_id)
        if uid is None:
            used = set(taken.values())
            uid = next((u for u in range(self.first, self.last + 1) if u not in used), None)
            if uid is None:
                raise RuntimeOperationError(f"PARADISE_SANDBOX_UIDS has no free uid left for client {client_id!r}")
            taken[client_id] = uid
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(taken, sort_keys=True))
            os.replace(tmp, self.path)
        return Who(uid, uid, frozenset({self.group}))

    def release(self, client_id: str) -> None:
        with self._lock:
            taken = self._read()
            if taken.pop(client_id, None) is not None:
                self.path.write_text(json.dumps(taken, sort_keys=True))


def _setfacl(*args: str) -> None:
    setfacl = shutil.which("setfacl")
    if setfacl is None:
        raise RuntimeOperationError(
            "the process runtime runs sandboxes as unprivileged uids with a root bridge and needs setfacl to let "
            "them reach their workspace (Debian/Ubuntu: apt-get install acl)"
        )
    result = subprocess.run([setfacl, *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeOperationError(f"setfacl {' '.join(args)} failed: {result.stderr.strip()}")


def grant_passage(path: Path, who: Who) -> None:
    """Let ``who`` pass through every directory on the way to ``path`` (and into ``path`` if a directory)."""
    chain = [*reversed(path.parents), path] if path.is_dir() else list(reversed(path.parents))
    for directory in chain:
        if not can_access(directory, who, EXECUTE):
            _setfacl("-m", f"g:{min(who.groups)}:x", str(directory))


def grant_workspace(workspace: Path, who: Who) -> None:
    """``who`` may read and write the workspace and everything in it, now and for files made later."""
    grant_passage(workspace.parent, who)
    if can_access(workspace, who, READ | WRITE | EXECUTE):
        return
    entry = f"u:{who.uid}:rwX"
    _setfacl("-R", "-m", f"{entry},d:{entry}", str(workspace))


def own_run_dir(run_dir: Path, who: Who) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chown(run_dir, who.uid, who.gid)
    run_dir.chmod(0o700)
    grant_passage(run_dir, who)
