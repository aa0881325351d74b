"""Every error sentence setup can end with (the Python steps and both wrappers) is in docs/troubleshooting.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"
SETUP_MODULES = sorted((ROOT / "bridge" / "cli" / "setup").glob("*.py"))
FAILURES = ("fail", "usage_exit")  # self.fail / report.fail raise SetupFailed; usage_exit ends with status 2


def normal(text: str) -> str:
    """Flags compare equal in both spellings: ``--port`` (bash, Python) and ``-Port`` (PowerShell)."""
    return re.sub(r"--(?=[a-z])", "-", text).lower()


def literal_parts(node: ast.expr) -> list[str]:
    """The fixed text of a message: a string, an f-string's constant pieces, or ``"…" + f"…"``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        pieces, current = [], ""
        for value in node.values:
            if isinstance(value, ast.Constant):
                current += str(value.value)
            else:
                pieces.append(current)
                current = ""
        return [*pieces, current]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return literal_parts(node.left) + literal_parts(node.right)
    return []


def python_messages() -> list[str]:
    """The longest fixed part of each message passed to a failure function in bridge/cli/setup/*.py."""
    found = []
    for module in SETUP_MODULES:
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            passed_on = isinstance(node.args[0], ast.Name | ast.Call)  # fail(sentence), usage_exit(str(exc))
            if name in FAILURES and not passed_on:
                parts = literal_parts(node.args[0])
                assert parts, f"{module.name}:{node.lineno}: a failure without a fixed sentence"
                found.append(max((p.strip(" .;:'()") for p in parts), key=len))
    return found


def script_messages(path: Path, function: str) -> list[str]:
    """The longest fixed part of each message a wrapper passes to its failure function."""
    pattern = re.compile(rf"""\b{function} "(.*)"(?:[\s;}}]|\bfi\b|\besac\b)*$""")
    messages = [m.group(1) for line in path.read_text().splitlines() if (m := pattern.search(line))]
    split = r"\$\([^)]*\)|\$\{[^}]*\}|\$[A-Za-z_:][A-Za-z0-9_:]*|\$\d"
    return [max((p.strip(" .;:'()") for p in re.split(split, m)), key=len) for m in messages]


@pytest.mark.parametrize(("source", "at_least"), [
    ("python", 30),
    ("start-devops-paradise.sh", 8),
    ("scripts/start-devops-paradise.ps1", 8),
])
def test_every_setup_error_is_in_troubleshooting(source: str, at_least: int) -> None:
    doc = normal(TROUBLESHOOTING.read_text())
    if source == "python":
        messages = python_messages()
    else:
        messages = script_messages(ROOT / source, "fail" if source.endswith(".sh") else "Fail")
    assert len(messages) >= at_least, messages
    missing = [m for m in messages if normal(m) not in doc]
    assert not missing, f"document these in docs/troubleshooting.md: {missing}"
