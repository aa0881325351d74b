"""The generated reference pages match their sources."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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


# Every error setup can print is checked against docs/troubleshooting.md in tests/unit/cli/test_setup_docs.py
# (the setup flow is Python now: bridge/cli/setup*.py; the two wrappers only prepare Python).
