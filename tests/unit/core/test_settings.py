from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bridge.settings import (
    SettingsError,
    bridge_user_home,
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
    settings = load_settings(data_dir=tmp_path, admin_token="  given-admin-token-1234 ")
    assert ensure_admin_token(settings) == "given-admin-token-1234"
    assert not (tmp_path / "admin-token").exists()


@pytest.mark.parametrize("token", ["", "   ", "x" * 15])
def test_empty_or_short_admin_token_is_refused(token, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", token)
    with pytest.raises(SettingsError) as caught:
        load_settings(data_dir=tmp_path)
    message = str(caught.value)
    assert "PARADISE_ADMIN_TOKEN: must be at least 16 characters" in message and "\n" not in message


@pytest.mark.parametrize("content", ["", "\n", "abc\n"])
def test_an_empty_or_short_token_file_is_replaced(content, tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path)
    path = tmp_path / "admin-token"
    path.write_text(content)
    path.chmod(0o644)
    token = ensure_admin_token(settings)
    assert len(token) >= 40 and path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a new file, not the old one rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]  # no temp file left behind


def test_a_symlinked_token_file_is_refused(tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    prepare_data_dir(settings)
    planted = tmp_path / "known-token"
    planted.write_text("attacker-chosen-token-value\n")
    (settings.data_dir / "admin-token").symlink_to(planted)
    with pytest.raises(SettingsError, match="is a symlink; refusing"):
        ensure_admin_token(settings)
    assert planted.read_text() == "attacker-chosen-token-value\n"


def test_workspace_roots(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("PARADISE_WORKSPACE_ROOTS", raising=False)
    assert load_settings(data_dir=tmp_path).workspace_root_paths == (bridge_user_home().resolve(),)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    roots = f" {tmp_path / 'link'} {os.pathsep}{os.pathsep}/srv/projects"
    settings = load_settings(data_dir=tmp_path, workspace_roots=roots)
    assert settings.workspace_root_paths == ((tmp_path / "real").resolve(), Path("/srv/projects"))


@pytest.mark.parametrize(
    ("roots", "expected"),
    [("/", "it would allow every directory"), ("relative/dir", "not an absolute path"), (" ", "at least one")],
)
def test_bad_workspace_roots(roots, expected, tmp_path) -> None:
    with pytest.raises(SettingsError, match=f"PARADISE_WORKSPACE_ROOTS: .*{expected}"):
        load_settings(data_dir=tmp_path, workspace_roots=roots)


def test_allowed_hosts_and_origins_default_to_loopback_and_none(monkeypatch, tmp_path) -> None:
    for key in ("PARADISE_ALLOWED_HOSTS", "PARADISE_ALLOWED_ORIGINS", "PARADISE_HOST"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(data_dir=tmp_path, port=8111)
    assert settings.allowed_host_set == {"127.0.0.1:8111", "localhost:8111", "[::1]:8111"}
    assert settings.host_allowed("LocalHost:8111") and not settings.host_allowed("evil.example:8111")
    assert not settings.host_allowed("localhost:8100") and not settings.host_allowed("localhost")
    assert settings.allowed_origin_set == frozenset()
    assert not settings.origin_allowed("http://localhost:8111")
    single = load_settings(data_dir=tmp_path, port=8111, host="10.1.2.3")
    assert "10.1.2.3:8111" in single.allowed_host_set  # the address the bridge's own URLs name
    assert "0.0.0.0:8111" not in load_settings(data_dir=tmp_path, port=8111, host="0.0.0.0").allowed_host_set


def test_allowed_hosts_and_origins_from_comma_lists(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PARADISE_ALLOWED_HOSTS", " Bridge.Example:8100, localhost:8100 ")
    monkeypatch.setenv("PARADISE_ALLOWED_ORIGINS", "http://localhost:3000/, https://app.example")
    settings = load_settings(data_dir=tmp_path)
    assert settings.allowed_host_set == {"bridge.example:8100", "localhost:8100"}
    assert settings.allowed_origin_set == {"http://localhost:3000", "https://app.example"}
    assert settings.origin_allowed("HTTP://localhost:3000") and not settings.origin_allowed("null")
    anything = load_settings(data_dir=tmp_path, allowed_hosts="*", allowed_origins="*")
    assert anything.host_allowed("whatever:1") and anything.origin_allowed("https://x.example")


@pytest.mark.parametrize(
    ("field", "value"),
    [("allowed_origins", "localhost:3000"), ("allowed_origins", "http://a.example/path"), ("allowed_hosts", "a b")],
)
def test_bad_host_or_origin_lists(field, value, tmp_path) -> None:
    with pytest.raises(SettingsError, match=f"PARADISE_{field.upper()}: .*is not a valid entry"):
        load_settings(data_dir=tmp_path, **{field: value})


def test_security_defaults(monkeypatch, tmp_path) -> None:
    for key in ("PARADISE_METRICS_PUBLIC", "PARADISE_EVENTS_KEEP"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(data_dir=tmp_path)
    assert settings.metrics_public is False and settings.events_keep == 10000
    with pytest.raises(SettingsError, match="PARADISE_EVENTS_KEEP"):
        load_settings(data_dir=tmp_path, events_keep=10)


def test_unwritable_data_dir_is_one_clear_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = load_settings(data_dir=blocker / "data")
    with pytest.raises(SettingsError, match=r"PARADISE_DATA_DIR .* is not writable"):
        prepare_data_dir(settings)
