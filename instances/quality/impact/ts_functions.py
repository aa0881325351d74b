"""TypeScript/JavaScript changes mapped to the functions, methods and classes they touch, as Python changes
are (gitdiff.py): both sides of each changed file are read by the TypeScript compiler's parser (one Node
process for all files, `ts_definitions.js`; nothing is type-checked or run), and the changed lines are
matched to the innermost definition around them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ..core.js_packages import JS_SUFFIXES, node_env, node_tool, toolchain_dirs
from ..core.runner import run_command
from ..core.workspace import Workspace
from .gitdiff import Definition, FileChange, Git, changed_from

MAX_FILES = 100
_SCRIPT = Path(__file__).with_name("ts_definitions.js")
_TIMEOUT = 60.0


def typescript_module(ws: Workspace) -> Path | None:
    """The workspace's typescript package, else the bundled toolchain's."""
    for base in [ws.root, *toolchain_dirs()]:
        candidate = base / "node_modules" / "typescript"
        if (candidate / "package.json").is_file():
            return candidate
    return None


async def _sources(git: Git, ws: Workspace, base: str, changes: list[FileChange]) -> dict[str, dict[str, str]]:
    files: dict[str, dict[str, str]] = {}
    for index, change in enumerate(changes):
        if change.status != "deleted":
            try:
                text = (ws.root / change.path).read_text(encoding="utf-8", errors="replace")
                files[f"{index}:new"] = {"name": change.path, "text": text}
            except OSError:
                pass
        if change.status in ("modified", "deleted"):
            old = await git.show(base, change.path)
            if old is not None:
                files[f"{index}:old"] = {"name": change.path, "text": old}
    return files


async def changed_ts_functions(
    git: Git, ws: Workspace, base: str, changes: dict[str, FileChange]
) -> tuple[list[dict[str, Any]], list[str]]:
    """(changed functions of the JS/TS files among `changes`, notes on what could not be mapped)."""
    scripts = [c for p, c in sorted(changes.items()) if p.endswith(JS_SUFFIXES)]
    if not scripts:
        return [], []
    node, module = node_tool("node", ws.root), typescript_module(ws)
    if node is None or module is None:
        return [], ["JS/TS changes not mapped to functions: node or typescript is not installed"]
    notes = (
        [f"functions listed for the first {MAX_FILES} of {len(scripts)} JS/TS files"]
        if len(scripts) > MAX_FILES
        else []
    )
    scripts = scripts[:MAX_FILES]
    with tempfile.TemporaryDirectory(prefix="paradise-tsdefs-") as tmpdir:
        request = Path(tmpdir) / "files.json"
        request.write_text(json.dumps(await _sources(git, ws, base, scripts)), encoding="utf-8")
        run = await run_command(
            [node, str(_SCRIPT), str(module), str(request)], cwd=ws.root, timeout=_TIMEOUT, env=node_env()
        )
    try:
        found = json.loads(run.stdout) if run.returncode == 0 else None
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        return [], [*notes, f"JS/TS changes not mapped to functions: {run.problem(_TIMEOUT) or run.tail(3)}"]
    functions: list[dict[str, Any]] = []
    for index, change in enumerate(scripts):
        new = [Definition(**d) for d in found.get(f"{index}:new", [])]
        old = [Definition(**d) for d in found.get(f"{index}:old", [])]
        functions += changed_from(change, new, old)
    return functions, notes
