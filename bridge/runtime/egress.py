"""Where a sandboxed process-runtime instance may connect (``PARADISE_INSTANCE_EGRESS``), as on Docker.

A sandbox has a network namespace of its own with nothing but its loopback (``none``, the default). Under
``registries`` it also gets the host's HTTP(S)_PROXY variables and still no route out, as a container on
Docker's internal network. Under ``all`` the bridge attaches slirp4netns to the namespace: user-mode NAT
(a tap device, 10.0.2.100, gateway 10.0.2.2, DNS 10.0.2.3) with the host's loopback *disabled*, so an
instance reaches the internet as a container does but never the bridge, the pool's ports or anything else
bound to the host's 127.0.0.1. (pasta cannot join a namespace as root here: it drops to ``nobody`` first.)

slirp4netns lives outside the sandbox and outlives a bridge restart, as the instance does. It ends with
the sandbox: its ``--exit-fd`` is the read end of a pipe whose only write end the sandbox's PID 1 holds
(instances/sandbox_init.py spawns the server with close_fds, so nothing else inherits it); when PID 1 dies,
the kernel ends the namespace, the pipe reaches EOF and slirp4netns exits.

Instances that may reach a registry also get the host's CA settings (a corporate proxy's CA lives there):
the variables are passed when their files exist, and the sandbox mounts those files read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Literal

Egress = Literal["none", "registries", "all"]
# Host proxy settings an instance may receive under egress "registries" (the only way out of a no-NAT net).
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
# The host's CA settings, for tools that reach a registry (npm audit, pip-audit, npm/pip installs).
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "PIP_CERT",
                "CURL_CA_BUNDLE", "GIT_SSL_CAINFO")  # fmt: skip
SLIRP_DNS = "10.0.2.3"  # slirp4netns's built-in DNS forwarder (to the host's resolvers)
TAP = "tap0"
READY_TIMEOUT = 10.0
NS_GET_PARENT = 0xB702  # _IO(0xb7, 0x2)


def ca_environment() -> dict[str, str]:
    """The host's CA variables whose files exist (a dangling one would make every TLS call fail)."""
    found = {name: os.environ.get(name, "") for name in CA_VARIABLES}
    return {name: value for name, value in found.items() if value and os.path.exists(value)}


def proxy_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in PROXY_VARIABLES if os.environ.get(name)}


def environment(egress: str) -> dict[str, str]:
    """What an instance's environment gains under ``egress``: nothing under none."""
    if egress == "registries":
        return {**proxy_environment(), **ca_environment()}
    if egress == "all":
        return ca_environment()
    return {}


def ca_paths(env: dict[str, str]) -> list[Path]:
    """The CA files and directories ``env`` names (mounted read-only into the sandbox)."""
    return [Path(env[name]) for name in CA_VARIABLES if name in env and os.path.isabs(env[name])]


def nat_usable() -> tuple[bool, str]:
    """(usable, reason) for egress ``all`` on the process runtime."""
    if shutil.which("slirp4netns") is None:
        return False, "slirp4netns is not installed (Debian/Ubuntu: apt-get install slirp4netns)"
    return True, "slirp4netns (user-mode NAT; the host's loopback unreachable)"


def owning_userns(pid: int) -> int:
    """An fd of the user namespace that owns ``pid``'s network namespace. bubblewrap's ``--disable-userns``
    puts the sandbox's processes in a nested user namespace; the network namespace belongs to its parent,
    and only from there may slirp4netns enter it (NS_GET_PARENT, ioctl_ns(2))."""
    own = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(own, NS_GET_PARENT)
    except OSError:  # no nested namespace (or the parent is beyond this process's): the process's own
        return os.dup(own)
    finally:
        os.close(own)


def write_resolv_conf(path: Path) -> Path:
    """The sandbox's resolv.conf under NAT: slirp4netns's DNS, which works even when the host's resolver is
    a loopback stub (127.0.0.53 inside the namespace would be the sandbox's own loopback)."""
    path.write_text(f"nameserver {SLIRP_DNS}\n")
    path.chmod(0o644)
    return path


class Nat:
    """One sandbox's NAT, prepared before bwrap starts (the pipe PID 1 inherits) and attached after."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_inheritable(self.write_end, True)

    @property
    def sandbox_fds(self) -> tuple[int, ...]:
        """The fds bwrap must pass on to the sandbox's PID 1."""
        return (self.write_end,)

    def sandbox_started(self) -> None:
        """bwrap has its copy of the write end: the bridge's must go, or slirp4netns would outlive PID 1."""
        if self.write_end >= 0:
            os.close(self.write_end)
            self.write_end = -1

    async def attach(self, pid: int, log: Path) -> asyncio.subprocess.Process:
        """slirp4netns into ``pid``'s network namespace, once it has configured the tap device."""
        owner = owning_userns(pid)
        ready_read, ready_write = os.pipe()
        argv = ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
                "--enable-seccomp", f"--exit-fd={self.read_end}", f"--ready-fd={ready_write}",
                "--netns-type=path", f"--userns-path=/proc/self/fd/{owner}", f"/proc/{pid}/ns/net", TAP]  # fmt: skip
        try:
            with log.open("ab") as out:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                    pass_fds=(self.read_end, ready_write, owner), start_new_session=True,
                )  # fmt: skip
        except OSError:
            os.close(ready_read)
            raise
        finally:
            os.close(owner)
            os.close(ready_write)
            self._close_read_end()  # slirp4netns holds it now
        # The ready byte, or EOF when slirp4netns died (it held the only write end).
        reading = asyncio.ensure_future(asyncio.to_thread(os.read, ready_read, 1))
        try:
            ready = await asyncio.wait_for(asyncio.shield(reading), READY_TIMEOUT)
        except TimeoutError:
            ready = b""
        if ready != b"1":
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await reading  # ends by EOF once slirp4netns is gone
        os.close(ready_read)
        if ready != b"1":
            raise OSError(f"slirp4netns did not configure the sandbox's network (see {log})")
        return proc

    def _close_read_end(self) -> None:
        if self.read_end >= 0:
            os.close(self.read_end)
            self.read_end = -1

    def abandon(self) -> None:
        """The launch failed before attach: close what is still open."""
        self._close_read_end()
        self.sandbox_started()
