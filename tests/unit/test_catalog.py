from __future__ import annotations

import pytest

from bridge.catalog import CatalogError, load_catalog

VALUES = {
    "port": "8201",
    "host": "127.0.0.1",
    "workspace": "/ws",
    "client": "alice",
    "data_dir": "/d",
    "profile": "quick",
    "instance_dir": "/d/i",
    "python": "/py",
    "serena_venv": "/venv",
}


def test_builtins_are_serena_and_quality() -> None:
    catalog = load_catalog()
    assert {"serena", "quality"} <= set(catalog)
    quality = catalog["quality"].render_command(VALUES)
    assert quality[:3] == ["/py", "-m", "instances.quality"]
    assert "--port" in quality and quality[quality.index("--port") + 1] == "8201"
    assert catalog["serena"].image and catalog["serena"].path == "/mcp"
    assert catalog["serena"].memory_bytes == 2 * 1024**3


def test_user_file_overrides_field_by_field_and_adds(tmp_path) -> None:
    extra = tmp_path / "c.toml"
    extra.write_text(
        '[services.quality]\nmemory = "3g"\n\n'
        '[services.echo]\ncommand = ["{python}", "-m", "echo", "--port", "{port}", "--ws", "{workspace}"]\n'
        'env = { LOG_LEVEL = "info", WHO = "{client}" }\npath = "/rpc/"\n'
    )
    catalog = load_catalog(extra)
    assert catalog["quality"].memory == "3g"
    assert catalog["quality"].command is not None  # kept from the built-in
    echo = catalog["echo"]
    assert echo.render_command(VALUES) == ["/py", "-m", "echo", "--port", "8201", "--ws", "/ws"]
    assert echo.render_env(VALUES) == {"LOG_LEVEL": "info", "WHO": "alice"}
    assert echo.path == "/rpc"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[services.x\n", "not valid TOML"),
        ('[services.x]\ncommand = ["run", "{nope}"]\n', "unknown placeholder {nope}"),
        ('[services.x]\npath = "mcp"\n', "path must start with '/'"),
        ('[services.x]\nmemory = "huge"\n', "not a memory size"),
        ("[services.x]\ncontainer_port = 0\n", "container_port"),
        ("services = 3\n", "expected [services.NAME] tables"),
    ],
)
def test_bad_catalogs_name_the_problem(tmp_path, text, words) -> None:
    extra = tmp_path / "c.toml"
    extra.write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(extra)
    assert words in str(caught.value)


def test_missing_catalog_file(tmp_path) -> None:
    with pytest.raises(CatalogError, match="No such file"):
        load_catalog(tmp_path / "absent.toml")
