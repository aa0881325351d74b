from __future__ import annotations

import json

import pytest

from bridge.mcp.claude_config import claude_add_commands, write_mcp_json

OURS = {
    "mcpServers": {
        "paradise-serena": {
            "type": "http",
            "url": "http://127.0.0.1:8100/c/alice/serena/mcp",
            "headers": {"Authorization": "Bearer ${DEVOPS_PARADISE_TOKEN}"},
        }
    }
}


def test_existing_servers_are_kept_and_a_backup_made(tmp_path) -> None:
    existing = {"mcpServers": {"mine": {"command": "x"}}, "other": 1}
    (tmp_path / ".mcp.json").write_text(json.dumps(existing))
    path, backup = write_mcp_json(tmp_path, OURS)
    merged = json.loads(path.read_text())
    assert set(merged["mcpServers"]) == {"mine", "paradise-serena"}
    assert merged["other"] == 1
    assert backup is not None and json.loads(backup.read_text()) == existing


def test_new_file_and_invalid_file(tmp_path) -> None:
    path, backup = write_mcp_json(tmp_path, OURS)
    assert backup is None and json.loads(path.read_text()) == OURS
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_mcp_json(tmp_path, OURS)
    assert path.read_text() == "{broken"


def test_claude_add_lines() -> None:
    (line,) = claude_add_commands(OURS)
    assert line == (
        "claude mcp add --transport http paradise-serena http://127.0.0.1:8100/c/alice/serena/mcp "
        "--header 'Authorization: Bearer ${DEVOPS_PARADISE_TOKEN}'"
    )
