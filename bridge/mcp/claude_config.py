"""Claude Code configuration: ``.mcp.json`` merging (never overwriting) and ``claude mcp add`` lines."""

from __future__ import annotations

import json
import os
import shlex
import stat
import time
from pathlib import Path
from typing import Any

TOKEN_VARIABLE = "DEVOPS_PARADISE_TOKEN"  # noqa: S105 - a variable name, not a secret


def claude_add_commands(config: dict[str, Any]) -> list[str]:
    lines = []
    for name, server in config.get("mcpServers", {}).items():
        header = server.get("headers", {}).get("Authorization", "")
        lines.append(
            f"claude mcp add --transport http {shlex.quote(name)} {shlex.quote(server['url'])} "
            f"--header {shlex.quote('Authorization: ' + header.removeprefix('Authorization: '))}"
        )
    return lines


def write_mcp_json(directory: Path, config: dict[str, Any]) -> tuple[Path, Path | None]:
    """Merge our servers into DIR/.mcp.json, keeping every other server; back up the old file first.

    A workspace may hold files planted by whoever can write it, so no file is written through a symlink:
    a symlink at ``.mcp.json`` or at its temp file is refused (ValueError), every new file is created with
    ``O_EXCL | O_NOFOLLOW``, and the result replaces ``.mcp.json`` by one atomic rename.
    """
    path = directory / ".mcp.json" if directory.is_dir() or not directory.suffix else directory
    tmp = path.with_name(path.name + ".tmp")
    for candidate in (path, tmp):
        if candidate.is_symlink():
            raise ValueError(f"{candidate} is a symlink; refusing to write through it, nothing was written")
    original, mode = _read_no_follow(path)
    existing: dict[str, Any] = {}
    backup = None
    if original is not None:
        try:
            existing = json.loads(original or b"{}")
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix or move it, nothing was written") from None
        if not isinstance(existing, dict):
            raise ValueError(f"{path} does not hold a JSON object; nothing was written")
        backup = _write_backup(path, original, mode)
    servers = dict(existing.get("mcpServers") or {})
    servers.update(config.get("mcpServers", {}))
    merged = {**existing, "mcpServers": servers}
    tmp.unlink(missing_ok=True)  # a regular file left by a crash (a symlink was refused above)
    _create_no_follow(tmp, (json.dumps(merged, indent=2) + "\n").encode(), mode)
    os.replace(tmp, path)  # renames over the name itself: a link planted meanwhile is replaced, not followed
    return path, backup


def _read_no_follow(path: Path) -> tuple[bytes | None, int]:
    """The file's bytes and mode (None, 0o644 if there is none); a symlink planted since the check fails (ELOOP)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None, 0o644
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror}); nothing was written") from None
    with os.fdopen(fd, "rb") as handle:
        return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)


def _create_no_follow(path: Path, data: bytes, mode: int) -> None:
    """A new file with ``data``: fails if anything (a file, a symlink) appeared at ``path`` meanwhile."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise ValueError(f"{path} appeared while writing (a planted file?); nothing was written") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_backup(path: Path, original: bytes, mode: int) -> Path:
    """A copy of the old file, as private as it was (it may hold other servers' secrets)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        backup = path.with_name(f".mcp.json.bak-{stamp}" + (f"-{attempt}" if attempt else ""))
        if not os.path.lexists(backup):
            _create_no_follow(backup, original, mode)
            return backup
    raise ValueError(f"too many backups of {path} this second; nothing was written")
