from __future__ import annotations

import stat

import pytest

from bridge.settings import (
    SettingsError,
    ensure_admin_token,
    load_settings,
    parse_memory,
    prepare_data_dir,
)


def test_defaults_follow_the_design(monkeypatch, tmp_path) -> None:
    for key in ("PARADISE_PORT", "PARADISE_HOST", "PARADISE_PORT_RANGE", "PARADISE_RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert (settings.host, settings.port, settings.runtime) == ("127.0.0.1", 8100, "auto")
    assert settings.port_pool == range(8200, 8300)
    assert settings.db_url == f"sqlite:///{tmp_path / 'paradise.db'}"


def test_environment_is_read_with_the_prefix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PARADISE_PORT_RANGE", " 9000 - 9009 ")
    monkeypatch.setenv("PARADISE_IDLE_TIMEOUT", "60")
    settings = load_settings(data_dir=tmp_path)
    assert settings.port_pool == range(9000, 9010)
    assert settings.idle_timeout == 60


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"port_range": "9000"}, "PARADISE_PORT_RANGE"),
        ({"port_range": "9100-9000"}, "PARADISE_PORT_RANGE"),
        ({"port_range": "80-90"}, "PARADISE_PORT_RANGE"),
        ({"port": 0}, "PARADISE_PORT"),
        ({"port": 8250}, "lies inside PORT_RANGE"),
        ({"max_memory": "lots"}, "PARADISE_MAX_MEMORY"),
        ({"runtime": "k8s"}, "PARADISE_RUNTIME"),
    ],
)
def test_bad_values_give_one_readable_line(overrides, field, tmp_path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(data_dir=tmp_path, **overrides)
    message = str(caught.value)
    assert field in message and "\n" not in message


def test_memory_sizes() -> None:
    assert parse_memory("512m") == 512 * 1024**2
    assert parse_memory("1.5GiB") == int(1.5 * 1024**3)
    assert parse_memory("2g") == 2 * 1024**3
    assert parse_memory(None) is None
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory("2 potatoes")


def test_admin_token_is_generated_once_with_mode_0600(tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    prepare_data_dir(settings)
    first = ensure_admin_token(settings)
    path = tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 40
    assert ensure_admin_token(settings) == first


def test_admin_token_from_settings_is_not_written(tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path, admin_token="given")
    assert ensure_admin_token(settings) == "given"
    assert not (tmp_path / "admin-token").exists()


def test_unwritable_data_dir_is_one_clear_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = load_settings(data_dir=blocker / "data")
    with pytest.raises(SettingsError, match=r"PARADISE_DATA_DIR .* is not writable"):
        prepare_data_dir(settings)
