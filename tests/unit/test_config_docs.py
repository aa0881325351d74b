"""The generated reference pages match their sources, and every error the setup script can print is documented."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from bridge.settings import BridgeSettings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_generated_from_the_settings() -> None:
    generated = load_script("gen_config_docs").render()
    assert (DOCS / "configuration.md").read_text() == generated, (
        "docs/configuration.md drifted from BridgeSettings: run python scripts/gen_config_docs.py"
    )
    for name in BridgeSettings.model_fields:
        assert f"| `PARADISE_{name.upper()}` |" in generated


def test_api_reference_is_generated_from_the_openapi_document() -> None:
    generated = load_script("gen_api_docs").render()
    assert (DOCS / "api.md").read_text() == generated, (
        "docs/api.md drifted from the OpenAPI document: run python scripts/gen_api_docs.py"
    )
    assert "### `POST /api/v1/clients`" in generated and "### ClientCreate" in generated


def script_messages(path: Path, function: str) -> list[str]:
    """The messages a shell or PowerShell script passes to its failure function, one per call."""
    pattern = re.compile(rf"""\b{function} "(.*)"(?:[\s;}}]|\bfi\b|\besac\b)*$""")
    return [m.group(1) for line in path.read_text().splitlines() if (m := pattern.search(line))]


def longest_literal(message: str) -> str:
    """The longest part of a message that is not a variable: what a reader will find in the docs."""
    parts = re.split(r"\$\([^)]*\)|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\d", message)
    return normal(max((part.strip(" .;:'()") for part in parts), key=len))


def normal(text: str) -> str:
    """Flags compare equal in both spellings: ``--port`` (bash) and ``-Port`` (PowerShell)."""
    return re.sub(r"--(?=[a-z])", "-", text).lower()


@pytest.mark.parametrize("function", ["fail", "usage_error"])
def test_every_error_of_the_setup_script_is_in_troubleshooting(function: str) -> None:
    doc = normal((DOCS / "troubleshooting.md").read_text())
    messages = script_messages(ROOT / "start-devops-paradise.sh", function)
    assert len(messages) >= (30 if function == "fail" else 5)
    missing = [m for m in messages if longest_literal(m) not in doc]
    assert not missing, f"document these in docs/troubleshooting.md: {missing}"


def test_the_powershell_script_fails_with_the_same_sentences() -> None:
    doc = normal((DOCS / "troubleshooting.md").read_text())
    messages = script_messages(ROOT / "scripts" / "start-devops-paradise.ps1", "Fail")
    assert len(messages) >= 15
    missing = [m for m in messages if longest_literal(m) not in doc]
    assert not missing, f"document these in docs/troubleshooting.md: {missing}"
