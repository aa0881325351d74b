"""The bubblewrap sandbox of a process-runtime instance, and the environment allow-list every instance gets.

An instance (Serena, the quality server, and whatever tenant code they run: pytest and its conftest) sees:

* the system read-only (``/usr`` and its ``/bin``, ``/lib`` links, ``/etc`` with its secrets masked),
* the Python that runs it read-only (the bridge's venv and base interpreter, the project's packages, and
  every absolute path its command or catalog env names, such as Serena's venv or a PYTHONPATH entry),
* its workspace read-write and its own home (``<instance dir>/home``) read-write, a private ``/tmp``,
* nothing else of the host: not the data dir (admin token, database, other instances' homes and logs), not
  other tenants' workspaces, not ``/root`` or ``/home``, not the engine's sockets under ``/run``.

It runs in its own user, PID, IPC and UTS namespaces as an unprivileged uid, with no capabilities. The
command is PID 1 of its PID namespace (``--as-pid-1``): when it dies, the kernel kills everything it left
behind (language servers), and nothing inside can see or signal a host process. ``--die-with-parent`` is
deliberately absent: instances outlive a bridge restart and are re-adopted. The network namespace is its
own (the bridge reaches the server over a Unix socket, relayed by PID 1); egress.py says what else it has.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bridge.runtime.access import Who, bridge_user, unreadable_workspace
from bridge.runtime.base import InstanceSpec, RuntimeOperationError

log = logging.getLogger(__name__)
SOCKET_NAME = "instance.sock"
INSTANCE_NICENESS = 10  # a sandbox's CPU priority below the bridge's (no cgroup CPU limit on this runtime)
SANDBOX_UID = 10001  # as the images' ``paradise`` user; the sandbox has no /etc/passwd entry for it
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# /bin, /lib... are links into /usr on merged-/usr systems and real directories elsewhere.
TOP_LEVEL_SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Readable system files that hold secrets; hidden even though /etc is mounted.
ETC_SECRETS = (
    "shadow", "shadow-", "gshadow", "gshadow-", "security/opasswd", "sudoers", "sudoers.d",
    "ssl/private", "ssh", "docker", "containerd", "machine-id", "krb5.keytab",
)  # fmt: skip
# PARADISE_* variables an instance may receive; every other one is the bridge's and stays with it.
INSTANCE_VARIABLES = frozenset(
    {"PARADISE_PROFILE", "PARADISE_INSTANCE_KEY", "PARADISE_PUBLIC_PORT", "PARADISE_INSTANCE_EGRESS"}
)
PROJECT_PACKAGES = ("bridge", "instances")


def instance_environment(spec: InstanceSpec, home: Path) -> dict[str, str]:
    """The whole environment of an instance, built from an allow-list, never inherited from the bridge:
    PATH, LANG, TZ and HOME, the instance's own PARADISE_* block, and its catalog env."""
    command_dir = [str(Path(spec.command[0]).parent)] if spec.command and os.path.isabs(spec.command[0]) else []
    env = {
        "PATH": os.pathsep.join(dict.fromkeys([*command_dir, str(Path(sys.prefix) / "bin"), SYSTEM_PATH])),
        "LANG": os.environ.get("LANG") or "C.UTF-8",
        "HOME": str(home),
        "USER": "paradise",  # getpass.getuser() (pytest's tmp_path) needs a name; there is no passwd entry
        "LOGNAME": "paradise",
        "PYTHONUNBUFFERED": "1",
    }
    if os.environ.get("TZ"):
        env["TZ"] = os.environ["TZ"]
    if project_path := _project_pythonpath():
        env["PYTHONPATH"] = project_path
    env |= {k: v for k, v in spec.env.items() if not k.startswith("PARADISE_") or k in INSTANCE_VARIABLES}
    env |= {
        "PARADISE_CLIENT": spec.client_id,
        "PARADISE_SERVICE": spec.service,
        "PARADISE_WORKSPACE": str(spec.workspace),
    }
    return env


def _project_pythonpath() -> str:
    """The bridge's PYTHONPATH entries that hold this project's own packages (a checkout run with another
    virtualenv, as setup's PARADISE_VENV does): the instance runs the same code, which the sandbox mounts."""
    roots = {p.parent.resolve() for p in _project_package_dirs()}
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e and Path(e).resolve() in roots]
    return os.pathsep.join(dict.fromkeys(entries))


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _depth(path: Path) -> int:
    return len(path.parts)


@dataclass(frozen=True)
class Launch:
    """What one launch of an instance needs beyond its spec: where its socket goes, the host credentials it
    runs as (None: the bridge's own, mapped by an unprivileged user namespace) and its limits."""

    home: Path
    run_dir: Path
    who: Who | None = None
    memory: int | None = None  # RLIMIT_DATA per process
    nproc: int | None = None  # RLIMIT_NPROC for the sandbox's uid
    disk: int | None = None  # size of the home tmpfs
    resolv: Path | None = None  # egress all: the resolv.conf naming slirp4netns's DNS (runtime/egress.py)
    readable: tuple[Path, ...] = ()  # more host paths shown read-only (the host's CA files, under egress)
    id: str = field(default_factory=lambda: secrets.token_hex(8))  # names this launch in run/exited

    @property
    def socket(self) -> Path:
        return self.run_dir / SOCKET_NAME


@dataclass(frozen=True)
class Sandbox:
    """How instances are sandboxed on this host. ``data_dir`` is never visible to an instance except its own
    run directory and, read-only, the ``shared`` paths (say, a Serena venv kept in the data dir) its command
    names and its siblings' run directories (their sockets)."""

    data_dir: Path
    shared: tuple[Path, ...] = ()
    uid: int = SANDBOX_UID
    bwrap: str = "bwrap"

    def command(self, spec: InstanceSpec, launch: Launch) -> list[str]:
        """The bwrap command line that runs ``spec.command`` in the sandbox, behind instances/sandbox_init.py
        (no secrets in it: the environment is passed to bwrap itself, so it is not in any process's argv)."""
        if not spec.command:
            raise ValueError(f"service {spec.service!r} has no command for the process runtime")
        # The user namespace maps the sandbox's uid back to ``who`` (or the bridge's uid), with no capabilities:
        # that uid must reach and read the workspace by its host path, or the instance would see it empty.
        if refusal := unreadable_workspace(spec.workspace, launch.who or bridge_user(), parents=True):
            raise RuntimeOperationError(refusal)
        home = launch.home
        argv = [
            self.bwrap, "--unshare-user", "--uid", str(self.uid), "--gid", str(self.uid), "--disable-userns",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--as-pid-1", "--cap-drop", "ALL", "--hostname", f"paradise-{spec.client_id}",
            "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp",  # noqa: S108 - the sandbox's own, empty /tmp
        ]  # fmt: skip
        argv += self._system_mounts()
        if launch.resolv is not None:
            argv += ["--ro-bind", str(launch.resolv), str(Path("/etc/resolv.conf").resolve())]
        for kind, path in self.mounts(spec, launch):
            if kind == "home":  # a tmpfs of its own: capped, and never on the data dir's disk
                size = ["--size", str(launch.disk)] if launch.disk else []
                argv += [*size, "--perms", "0700", "--tmpfs", str(path)]
            else:
                argv += ["--tmpfs", str(path)] if kind == "mask" else [f"--{kind}", str(path), str(path)]
        return [*argv, "--chdir", str(home), "--", *self._init(spec, launch), "--", *spec.command]

    @staticmethod
    def _init(spec: InstanceSpec, launch: Launch) -> list[str]:
        argv = [sys.executable, "-m", "instances.sandbox_init", "--socket", str(launch.socket)]
        argv += ["--port", str(spec.port), "--launch", launch.id, "--nice", str(INSTANCE_NICENESS)]
        for service, port in sorted(spec.peers.items()):
            argv += ["--peer", f"{port}={peer_run_dir(launch.run_dir, service) / SOCKET_NAME}"]
        if launch.nproc:
            argv += ["--nproc", str(launch.nproc)]
        if launch.memory:
            argv += ["--memory", str(launch.memory)]
        return argv

    # ---- what is mounted ------------------------------------------------------------------------------

    @staticmethod
    def _system_mounts() -> list[str]:
        argv = ["--ro-bind", "/usr", "/usr"]
        for name in TOP_LEVEL_SYSTEM:
            top = Path("/") / name
            if top.is_symlink():
                argv += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir():
                argv += ["--ro-bind", str(top), str(top)]
        argv += ["--ro-bind", "/etc", "/etc"]
        for secret in ETC_SECRETS:
            path = Path("/etc") / secret
            if path.is_dir() and not path.is_symlink():
                argv += ["--tmpfs", str(path)]
            elif path.exists():
                argv += ["--ro-bind", "/dev/null", str(path)]
        resolv = Path("/etc/resolv.conf")
        if resolv.is_symlink() and not _inside(resolv.resolve(), Path("/etc")):  # e.g. systemd-resolved's stub
            argv += ["--ro-bind-try", str(resolv.resolve()), str(resolv.resolve())]
        return argv

    def mounts(self, spec: InstanceSpec, launch: Launch) -> list[tuple[str, Path]]:
        """(kind, path) in mount order: shallow paths first, so a deeper mount (the workspace inside a
        read-only source tree, the home inside a masked data dir) lands on top of a shallower one."""
        data_dir = self.data_dir.resolve()
        workspace, home = spec.workspace.resolve(), launch.home.resolve()
        readable = self._readable(spec, data_dir, home, launch.readable)
        mounts: dict[Path, str] = dict.fromkeys(readable, "ro-bind")
        for service in spec.peers:
            mounts[peer_run_dir(launch.run_dir, service).resolve()] = "ro-bind"
        mounts[workspace] = "bind"
        mounts[launch.run_dir.resolve()] = "bind"
        mounts[home] = "home"
        if any(_inside(data_dir, path) for path in mounts if path != home):
            mounts[data_dir] = "mask"  # a workspace or a source path that holds the data dir: hide it again
        return sorted(((kind, path) for path, kind in mounts.items()), key=lambda item: _depth(item[1]))

    def _readable(self, spec: InstanceSpec, data_dir: Path, home: Path, extra: tuple[Path, ...] = ()) -> set[Path]:
        """Host paths shown read-only: the Python, the project, every absolute path the command or catalog env
        names, and ``extra`` (the launch's: the host's CA files under egress); never the data dir."""
        wanted = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        wanted |= _project_package_dirs()
        for value in [*(spec.command or []), *spec.env.values(), *map(str, extra)]:
            for part in str(value).split(os.pathsep):
                if os.path.isabs(part) and os.path.exists(part):
                    wanted |= {Path(os.path.normpath(part)), Path(part).resolve()}
        for path in list(wanted):  # a venv works only whole, and only with the interpreter it was made from
            venv = _venv_root(path)
            if venv is not None:
                wanted |= {venv, *_venv_base(venv)}
        allowed_inside = [home.parent, *(p.resolve() for p in self.shared)]
        readable = set()
        for path in wanted:
            real = path.resolve()
            if _inside(data_dir, real) or _inside(data_dir, path):  # "/" or a parent of the data dir: all of it
                log.warning("sandbox of %s: %s is not mounted (it holds the data dir)", spec.name, path)
            elif _inside(real, data_dir) and not any(_inside(real, ok) for ok in allowed_inside):
                log.warning("sandbox of %s: %s is not mounted (inside the data dir)", spec.name, path)
            elif not any(_inside(real, system) for system in (Path("/usr"), Path("/etc"))):
                readable.add(path)
        # A path inside another one is shown by that mount already (a mount point on a symlink would fail).
        return {path for path in readable if not any(other != path and _inside(path, other) for other in readable)}


def peer_run_dir(run_dir: Path, service: str) -> Path:
    """A sibling instance's run directory: <instances>/<client>/<service>/run, beside this one's."""
    return run_dir.parent.parent / service / run_dir.name


def _venv_root(path: Path) -> Path | None:
    """The virtualenv that ``path`` (its interpreter, a script, the venv itself) belongs to, if any."""
    for candidate in (path, *list(path.parents)[:3]):
        if (candidate / "pyvenv.cfg").is_file():
            return candidate
    return None


def _venv_base(venv: Path) -> set[Path]:
    """The base interpreter's prefix of a venv (its pyvenv.cfg ``home`` is that prefix's bin directory)."""
    for line in (venv / "pyvenv.cfg").read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            bin_dir = Path(value.strip())
            return {bin_dir.parent, bin_dir.resolve().parent}
    return set()


@functools.cache
def _project_package_dirs() -> frozenset[Path]:
    """Where this project's own packages live (an editable install maps them into the checkout)."""
    found = set()
    for name in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            found.add(Path(location))
    return frozenset(found)


@functools.cache
def bwrap_usable(bwrap: str = "bwrap") -> tuple[bool, str]:
    """(usable, reason): bubblewrap is installed and can make the namespaces the sandbox needs here (user
    namespaces may be disabled by the kernel, an AppArmor policy or a container's seccomp profile)."""
    path = shutil.which(bwrap)
    if path is None:
        return False, "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    argv = [path, "--unshare-user", "--uid", str(SANDBOX_UID), "--unshare-pid", "--unshare-ipc", "--as-pid-1",
            *Sandbox._system_mounts(), "--proc", "/proc", "--dev", "/dev",
            "--", "/usr/bin/true"]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, env={"PATH": SYSTEM_PATH})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap does not run here ({exc.__class__.__name__}: {exc})"
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        return False, f"bubblewrap cannot make its namespaces here: {detail[-1] if detail else result.returncode}"
    return True, f"bubblewrap {path} makes user, PID and mount namespaces"
