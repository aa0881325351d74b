"""The generated reference pages match their sources."""

from __future__ import annotations

from bridge.settings import BridgeSettings
from scripts import gen_api_docs, gen_config_docs
from scripts.docgen import ROOT

DOCS = ROOT / "docs"


def test_configuration_reference_is_generated_from_the_settings() -> None:
    generated = gen_config_docs.render()
    assert (DOCS / "configuration.md").read_text() == generated, (
        "docs/configuration.md drifted from BridgeSettings: run python -m scripts.gen_config_docs"
    )
    for name in BridgeSettings.model_fields:
        assert f"| `PARADISE_{name.upper()}` |" in generated


def test_api_reference_is_generated_from_the_openapi_document() -> None:
    generated = gen_api_docs.render()
    assert (DOCS / "api.md").read_text() == generated, (
        "docs/api.md drifted from the OpenAPI document: run python -m scripts.gen_api_docs"
    )
    assert "### `POST /api/v1/clients`" in generated and "### ClientCreate" in generated


# Every error setup can print is checked against docs/troubleshooting.md in tests/unit/cli/test_setup_docs.py
# (the setup flow is Python now: bridge/cli/setup/; the two wrappers only prepare Python).
