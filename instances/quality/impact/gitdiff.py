"""Changes from git (working tree, staged and untracked, against a base ref) and the Python
functions/classes that those changed lines fall in."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import QualityError
from ..core.runner import run_command
from ..core.workspace import Workspace

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_SAFE_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/~^@{}]*$")
_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "modified", "U": "modified"}


@dataclass
class FileChange:
    path: str
    status: str  # added, modified, deleted, untracked
    new_lines: set[int] = field(default_factory=set)  # lines of the working tree version touched
    old_lines: set[int] = field(default_factory=set)  # lines of the base version touched
    added: int = 0
    removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "added_lines": self.added, "removed_lines": self.removed}


@dataclass
class Definition:
    qualname: str
    kind: str  # function, class
    start: int
    end: int
    body_start: int = 0  # first statement of the body: lines before it run at import time


def parse_name_status(text: str) -> dict[str, str]:
    """`git diff --name-status -z --no-renames` output -> {path: status}."""
    parts = [p for p in text.split("\0") if p]
    result = {}
    for code, path in zip(parts[::2], parts[1::2], strict=False):
        result[path] = _STATUS.get(code[:1], "modified")
    return result


def parse_unified_diff(text: str) -> dict[str, FileChange]:
    """A `git diff -U0 --no-renames` patch -> per-file touched line numbers on both sides.

    A pure deletion touches no new line; it is recorded at the new-side line after which the
    lines were removed, so the enclosing definition is still found."""
    changes: dict[str, FileChange] = {}
    current: FileChange | None = None
    old_path: str | None = None
    for line in text.splitlines():
        if line.startswith("diff --git "):
            current, old_path = None, None
        elif line.startswith("--- "):
            old_path = None if line[4:] == "/dev/null" else line[4:].removeprefix("a/")
        elif line.startswith("+++ "):
            new_path = None if line[4:] == "/dev/null" else line[4:].removeprefix("b/")
            path = new_path or old_path or ""
            status = "added" if old_path is None else ("deleted" if new_path is None else "modified")
            current = changes.setdefault(path, FileChange(path, status))
        elif current is not None and (match := _HUNK.match(line)):
            old_start, old_count = int(match.group(1)), int(match.group(2) or "1")
            new_start, new_count = int(match.group(3)), int(match.group(4) or "1")
            current.old_lines.update(range(old_start, old_start + old_count))
            current.new_lines.update(range(new_start, new_start + new_count))
            if new_count == 0 and current.status != "deleted":
                current.new_lines.add(max(new_start, 1))
            current.added += new_count
            current.removed += old_count
    return changes


def definitions(source: str) -> list[Definition]:
    """Every function and class with its qualified name and line span (decorators included)."""
    tree = ast.parse(source)
    found: list[Definition] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                body = child.body[0].lineno if child.body else child.lineno
                found.append(Definition(qualname, kind, start, child.end_lineno or child.lineno, body))
                visit(child, qualname + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def touched_definitions(defs: list[Definition], lines: set[int]) -> dict[str, Definition]:
    """The innermost definition around each touched line; lines outside any -> '<module>'."""
    touched: dict[str, Definition] = {}
    for line in sorted(lines):
        around = [d for d in defs if d.start <= line <= d.end]
        if around:
            inner = min(around, key=lambda d: d.end - d.start)
            touched[inner.qualname] = inner
        else:
            touched.setdefault("<module>", Definition("<module>", "module", 0, 0))
    return touched


def changed_definitions(change: FileChange, new_source: str | None, old_source: str | None) -> list[dict[str, Any]]:
    """Functions/classes added, modified or removed by this change (by qualified name)."""
    new_defs = definitions(new_source) if new_source is not None else []
    old_defs = definitions(old_source) if old_source is not None else []
    return changed_from(change, new_defs, old_defs)


def changed_from(change: FileChange, new_defs: list[Definition], old_defs: list[Definition]) -> list[dict[str, Any]]:
    """changed_definitions() from the definitions of both sides, whichever parser read them."""
    new_names = {d.qualname for d in new_defs}
    old_names = {d.qualname for d in old_defs}
    result: dict[str, dict[str, Any]] = {}
    for name, d in touched_definitions(new_defs, change.new_lines).items():
        kind = "added" if name not in old_names and name != "<module>" else "modified"
        result[name] = {
            "path": change.path,
            "name": name,
            "kind": d.kind,
            "change": kind,
            "start_line": d.start or None,
            "end_line": d.end or None,
            "body_start_line": d.body_start or None,
        }
    for name, d in touched_definitions(old_defs, change.old_lines).items():
        if name not in result:
            kind = "removed" if name not in new_names and name != "<module>" else "modified"
            current = next((n for n in new_defs if n.qualname == name), None)
            result[name] = {
                "path": change.path,
                "name": name,
                "kind": d.kind,
                "change": kind,
                "start_line": current.start if current else None,
                "end_line": current.end if current else None,
                "body_start_line": current.body_start if current else None,
            }
    return sorted(result.values(), key=lambda r: (r["start_line"] or 0, r["name"]))


class Git:
    """The few read-only git commands the change analysis needs."""

    def __init__(self, ws: Workspace, timeout: float = 60.0) -> None:
        self.ws = ws
        self.timeout = timeout

    async def run(self, *args: str, check: bool = True) -> str:
        argv = ["git", "-c", f"safe.directory={self.ws.root}", "-c", "core.quotepath=false", *args]
        result = await run_command(argv, cwd=self.ws.root, timeout=self.timeout, max_output=20_000_000)
        if result.missing:
            raise QualityError("tool_missing", "git is not installed")
        if check and (result.returncode != 0 or result.timed_out):
            raise QualityError("git_failed", result.problem(self.timeout) or f"git {args[0]}: {result.tail(4)}")
        if result.truncated:
            raise QualityError("git_failed", f"git {args[0]} printed more than 20 MB")
        return result.stdout

    async def require_repo(self) -> str:
        """The repository's top directory, or a QualityError saying it is not a git repository."""
        argv = ["git", "-c", f"safe.directory={self.ws.root}", "rev-parse", "--show-toplevel"]
        result = await run_command(argv, cwd=self.ws.root, timeout=self.timeout)
        if result.missing:
            raise QualityError("tool_missing", "git is not installed")
        if result.returncode != 0:
            raise QualityError("not_a_git_repository", f"{self.ws.root} is not inside a git repository")
        return result.stdout.strip()

    async def resolve(self, ref: str) -> str:
        if not _SAFE_REF.match(ref) or ".." in ref:
            raise QualityError("bad_ref", f"{ref!r} is not a valid git ref")
        out = await self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if not out.strip():
            if ref == "HEAD" and not (await self.run("rev-list", "-n", "1", "--all", check=False)).strip():
                raise QualityError("no_commits", "the repository has no commits yet, so there is no HEAD to compare")
            raise QualityError("bad_ref", f"git ref {ref!r} does not name a commit")
        return out.strip()

    async def changes(self, base: str) -> dict[str, FileChange]:
        """Tracked changes (staged and unstaged) against `base`, plus untracked files."""
        statuses = parse_name_status(
            await self.run("diff", "--relative", "--name-status", "-z", "--no-renames", base, "--", ".")
        )
        patch = parse_unified_diff(
            await self.run("diff", "--relative", "--no-color", "--no-ext-diff", "--no-renames", "-U0", base, "--", ".")
        )
        changes: dict[str, FileChange] = {}
        for path, status in statuses.items():
            change = patch.get(path) or FileChange(path, status)
            change.status = status
            changes[path] = change
        untracked = await self.run("ls-files", "--others", "--exclude-standard", "-z", "--", ".")
        for path in filter(None, untracked.split("\0")):
            text = (self.ws.root / path).read_text(encoding="utf-8", errors="replace") if path.endswith(".py") else ""
            count = len(text.splitlines())
            changes[path] = FileChange(path, "untracked", set(range(1, count + 1)), set(), count, 0)
        return changes

    async def show(self, base: str, path: str) -> str | None:
        out = await run_command(
            ["git", "-c", f"safe.directory={self.ws.root}", "show", f"{base}:./{path}"],
            cwd=self.ws.root,
            timeout=self.timeout,
            max_output=20_000_000,
        )
        return out.stdout if out.returncode == 0 else None
