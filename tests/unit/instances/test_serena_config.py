"""Rendering of a Serena instance's configuration and command line (no Serena needed)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from bridge.host import serena_install
from instances.serena import __main__ as entrypoint
from instances.serena.config import (
    GUARDED_LAUNCHER,
    load_template,
    render_serena_config,
    serena_command,
    serena_environment,
    write_serena_home,
)


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    return tmp_path / "serena venv"  # a space on purpose: paths must survive quoting


def read_config(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_config_points_python_at_the_preinstalled_pyright(tmp_path: Path, venv: Path) -> None:
    path = write_serena_home(tmp_path / "home", serena_venv=venv)

    assert path == tmp_path / "home" / ".serena" / "serena_config.yml"
    config = read_config(path)
    assert config["ls_specific_settings"] == {"python": {"ls_path": str(venv / "bin" / "pyright-langserver")}}
    assert config["language_backend"] == "LSP"
    assert config["agent_interface"] == "tools"


def test_config_has_no_gui_no_browser_no_dashboard_by_default(tmp_path: Path, venv: Path) -> None:
    config = read_config(write_serena_home(tmp_path / "home", serena_venv=venv))

    assert config["gui_log_window"] is False
    assert config["web_dashboard"] is False
    assert config["web_dashboard_open_on_launch"] is False
    assert config["web_dashboard_listen_address"] == "127.0.0.1"
    assert config["token_count_estimator"] == "CHAR_COUNT"
    assert config["trusted_project_path_patterns"] == []
    assert config["projects"] == []
    assert config["log_level"] == 20


def test_dashboard_can_be_enabled_but_never_opens_a_browser(tmp_path: Path, venv: Path) -> None:
    config = read_config(write_serena_home(tmp_path / "home", serena_venv=venv, dashboard=True))

    assert config["web_dashboard"] is True
    assert config["web_dashboard_open_on_launch"] is False


def test_project_data_is_kept_in_the_instance_home(tmp_path: Path, venv: Path) -> None:
    home = tmp_path / "home"
    config = read_config(write_serena_home(home, serena_venv=venv))

    location = config["project_serena_folder_location"]
    assert location == f"{home}/.serena/workspaces/$projectFolderName"
    assert (home / ".serena" / "workspaces").is_dir()


def test_every_key_serena_reads_is_present_so_it_does_not_migrate_the_file(tmp_path: Path, venv: Path) -> None:
    config = read_config(write_serena_home(tmp_path / "home", serena_venv=venv))

    expected = {
        "language_backend",
        "agent_interface",
        "line_ending",
        "gui_log_window",
        "web_dashboard",
        "web_dashboard_open_on_launch",
        "web_dashboard_interface",
        "web_dashboard_listen_address",
        "web_dashboard_trusted_hosts",
        "jetbrains_plugin_server_address",
        "jetbrains_launch_command",
        "log_level",
        "trace_lsp_communication",
        "ls_specific_settings",
        "ls_priorities",
        "project_serena_folder_location",
        "trusted_project_path_patterns",
        "tool_timeout",
        "default_max_tool_answer_chars",
        "symbol_info_budget",
        "token_count_estimator",
        "excluded_tools",
        "included_optional_tools",
        "fixed_tools",
        "excluded_apis",
        "included_apis",
        "base_modes",
        "default_modes",
        "ignored_paths",
        "read_only_memory_patterns",
        "ignored_memory_patterns",
        "auth_secret",
        "projects",
    }
    assert expected <= config.keys()


def test_auth_secret_is_generated_once_and_kept(tmp_path: Path, venv: Path) -> None:
    home = tmp_path / "home"
    first = read_config(write_serena_home(home, serena_venv=venv))["auth_secret"]
    second = read_config(write_serena_home(home, serena_venv=venv, dashboard=True))["auth_secret"]

    assert len(first) == 36
    assert first == second
    assert read_config(write_serena_home(tmp_path / "other", serena_venv=venv))["auth_secret"] != first


def test_rewrite_restores_our_settings_and_file_is_private(tmp_path: Path, venv: Path) -> None:
    home = tmp_path / "home"
    path = write_serena_home(home, serena_venv=venv)
    path.write_text(path.read_text().replace("web_dashboard: false", "web_dashboard: true"))

    write_serena_home(home, serena_venv=venv)

    assert read_config(path)["web_dashboard"] is False
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob("*.tmp"))


def test_logs_go_to_the_given_directory(tmp_path: Path, venv: Path) -> None:
    home = tmp_path / "home"
    write_serena_home(home, serena_venv=venv)
    old_log = home / ".serena" / "logs" / "2025-01-01" / "mcp_1.txt"
    old_log.parent.mkdir(parents=True)
    old_log.write_text("earlier run")
    log_dir = tmp_path / "instance-logs"

    write_serena_home(home, serena_venv=venv, log_dir=log_dir)
    write_serena_home(home, serena_venv=venv, log_dir=log_dir)  # idempotent

    link = home / ".serena" / "logs"
    assert link.is_symlink()
    assert link.resolve() == log_dir.resolve()
    assert (log_dir / "2025-01-01" / "mcp_1.txt").read_text() == "earlier run"


def test_home_with_a_dollar_sign_is_refused(tmp_path: Path, venv: Path) -> None:
    with pytest.raises(ValueError, match=r"\$"):
        write_serena_home(tmp_path / "a$b", serena_venv=venv)


def test_values_are_quoted_safely(tmp_path: Path) -> None:
    tricky = tmp_path / 'it\'s "quoted": yes # no comment'
    text = render_serena_config(python_ls_path=tricky / "pyright-langserver", project_data_dir=tricky, auth_secret="s")
    config = yaml.safe_load(text)
    assert config["ls_specific_settings"]["python"]["ls_path"] == str(tricky / "pyright-langserver")
    assert config["project_serena_folder_location"] == f"{tricky}/$projectFolderName"


def test_template_documents_the_mechanism_for_other_languages() -> None:
    template = load_template()
    for option in ("ls_path", "ls_base_cmd", "ls_args", "ls_extra_args"):
        assert option in template


def test_command_is_streamable_http_on_the_given_address(tmp_path: Path, venv: Path) -> None:
    workspace = tmp_path / "ws"

    argv = serena_command(venv, "127.0.0.1", 8200, workspace)

    assert argv == [
        str(venv / "bin" / "serena"),
        "start-mcp-server",
        "--transport",
        "streamable-http",
        "--host",
        "127.0.0.1",
        "--port",
        "8200",
        "--project",
        str(workspace),
        "--context",
        "ide",
        "--agent-interface",
        "tools",
        "--enable-web-dashboard",
        "False",
        "--open-web-dashboard",
        "False",
        "--enable-gui-log-window",
        "False",
    ]
    assert serena_command(venv, "127.0.0.1", 8200, workspace, dashboard=True)[-5] == "True"


def test_environment_isolates_home_and_turns_usage_reporting_off(tmp_path: Path) -> None:
    env = serena_environment(tmp_path / "home")

    assert env["HOME"] == str(tmp_path / "home")
    assert env["SERENA_HOME"] == str(tmp_path / "home" / ".serena")
    assert env["SERENA_USAGE_REPORTING"] == "false"


def test_entrypoint_writes_home_and_execs_serena(tmp_path: Path, venv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (venv / "bin").mkdir(parents=True)
    for name in ("serena", "python"):
        (venv / "bin" / name).write_text("#!/bin/sh\n")
        (venv / "bin" / name).chmod(0o755)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(entrypoint.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(entrypoint.os, "environ", dict(os.environ))

    entrypoint.main(
        ["--venv", str(venv), "--port", "8201", "--workspace", str(workspace), "--home", str(tmp_path / "home")]
    )

    # Serena's own command line, run by its venv's Python through the launcher that enforces the instance key
    serena_argv = serena_command(venv, "127.0.0.1", 8201, workspace)
    guarded = [str(venv / "bin" / "python"), str(GUARDED_LAUNCHER), *serena_argv[1:]]
    assert calls == [(guarded[0], guarded)]
    assert entrypoint.os.environ["HOME"] == str(tmp_path / "home")
    assert (tmp_path / "home" / ".serena" / "serena_config.yml").is_file()


def test_entrypoint_refuses_a_missing_workspace(tmp_path: Path, venv: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        entrypoint.main(
            [
                "--venv",
                str(venv),
                "--port",
                "8201",
                "--workspace",
                str(tmp_path / "nope"),
                "--home",
                str(tmp_path / "home"),
            ]
        )
    assert exc.value.code == 2
    assert "workspace is not a directory" in capsys.readouterr().err


def test_template_ships_with_the_package() -> None:
    package_dir = Path(sys.modules["instances.serena.config"].__file__).parent
    assert (package_dir / "serena_config.template.yml").is_file()


def fake_install(venv: Path, marker: dict) -> None:
    for name in ("python", "serena", "pyright-langserver"):
        exe = venv / "bin" / name
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    (venv / serena_install.MARKER_FILE).write_text(json.dumps(marker))


def test_serena_installed_needs_the_verified_marker_of_the_pinned_versions(tmp_path: Path) -> None:
    venv = serena_install.default_serena_venv(tmp_path)
    assert venv == tmp_path / "serena-venv"
    assert not serena_install.serena_installed(venv)

    fake_install(venv, {"serena-agent": serena_install.SERENA_VERSION, "pyright": "0.0.1"})
    assert not serena_install.serena_installed(venv)

    fake_install(venv, {"serena-agent": serena_install.SERENA_VERSION, "pyright": serena_install.PYRIGHT_VERSION})
    assert serena_install.serena_installed(venv)
    assert not serena_install.serena_installed(venv, version="0.0.1")


def test_install_skips_a_complete_installation(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    fake_install(venv, {"serena-agent": serena_install.SERENA_VERSION, "pyright": serena_install.PYRIGHT_VERSION})
    messages: list[str] = []

    serena_install.install_serena(venv, progress=messages.append)

    assert messages == [f"Serena {serena_install.SERENA_VERSION} already installed in {venv}"]


def test_install_refuses_an_unsupported_python_with_the_failing_step(tmp_path: Path) -> None:
    script = tmp_path / "python2"
    script.write_text("#!/bin/sh\necho 2.7\n")
    script.chmod(0o755)

    with pytest.raises(serena_install.SerenaInstallError) as exc:
        serena_install.install_serena(tmp_path / "venv", python=str(script), progress=lambda _: None)

    assert exc.value.step == "check python"
    assert "2.7" in str(exc.value)
