"""Claude Code configuration: ``.mcp.json`` merging (never overwriting) and ``claude mcp add`` lines."""

from __future__ import annotations

import json
import os
import shlex
import shutil
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
    """Merge our servers into DIR/.mcp.json, keeping every other server; back up the old file first."""
    path = directory / ".mcp.json" if directory.is_dir() or not directory.suffix else directory
    existing: dict[str, Any] = {}
    backup = None
    if path.exists():
        try:
            existing = json.loads(path.read_text() or "{}")
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix or move it, nothing was written") from None
        if not isinstance(existing, dict):
            raise ValueError(f"{path} does not hold a JSON object; nothing was written")
        backup = path.with_name(f".mcp.json.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
    servers = dict(existing.get("mcpServers") or {})
    servers.update(config.get("mcpServers", {}))
    merged = {**existing, "mcpServers": servers}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)
    return path, backup
