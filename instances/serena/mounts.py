"""Which host paths a Serena container gets read-only for the operator's own language servers.

``PARADISE_SERENA_LANGUAGE_SERVERS`` names a TOML of servers installed by other means (rust-analyzer, JDT LS,
...). In a sandbox their directories are mounted because the catalog env names them; a container needs Docker
volumes, at the same paths so the TOML's paths hold inside it. Here, not in the runtime: what may be mounted
depends on where images/serena has files of its own.
"""

from __future__ import annotations

from pathlib import Path

from instances.serena import languages as L

# Where images/serena (and the foundation under it) has files, and what a container mounts itself: an
# operator's server directory inside the former or holding either is not mounted whole (it would hide the
# image's own files); the server file alone is.
IMAGE_FILES = ("/bin", "/etc", "/lib", "/lib64", "/opt/paradise", "/opt/serena-venv", "/opt/venv", "/sbin", "/usr",
               "/var")
CONTAINER_MOUNTS = ("/dev", "/home/paradise", "/proc", "/run", "/state", "/sys", "/tmp", "/workspace")  # noqa: S108


def operator_mounts(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Docker volumes for the operator's language servers an instance's catalog env names (SERENA_SERVER_DIRS,
    SERENA_LANGUAGE_SERVERS): each server's directory (or the server alone, see IMAGE_FILES) and the TOML,
    read-only at the same paths, so the TOML's paths hold inside the container as in a sandbox."""
    try:
        servers = L.load_operator_servers(env.get("SERENA_LANGUAGE_SERVERS") or None)
    except L.LanguageError:
        return {}  # the instance refuses the file itself and says why
    paths = [Path(env["SERENA_LANGUAGE_SERVERS"])] if servers else []
    for server in servers.values():
        clash = any(_within(server.parent, Path(p)) for p in IMAGE_FILES) or any(
            _within(Path(p), server.parent) for p in (*IMAGE_FILES, *CONTAINER_MOUNTS))
        paths.append(server if clash else server.parent)
    return {str(path): {"bind": str(path), "mode": "ro"} for path in dict.fromkeys(paths) if path.exists()}


def _within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents
