"""``devops-paradise setup``: the command line (intermixed as the shell script took it, its usage errors with
exit status 2) and the options resolved from it and the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.cli.setup.context import program_name
from bridge.cli.setup.main import COMMAND_VARIABLE, default_client, parse_setup_words, resolve_options


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PARADISE_") or name == COMMAND_VARIABLE:
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def usage_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        resolve_options(parse_setup_words(list(words)))
    assert stopped.value.code == 2
    return capsys.readouterr().err.strip()


def test_positionals_and_options_in_any_order(tmp_path: Path) -> None:
    options = resolve_options(parse_setup_words(["alice", "--port", "9100", "ws", "--runtime", "process", "quick"]))
    assert (options.client, options.workspace, options.profile) == ("alice", tmp_path / "ws", "quick")
    assert (options.port, options.runtime_arg, options.bridge_url) == (9100, "process", "http://127.0.0.1:9100")
    assert options.action == "setup" and not options.show_token and not options.assume_yes
    assert (options.repo_dir / "bridge" / "cli" / "setup" / "main.py").is_file()  # the bridge starts from here


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PARADISE_PORT", "8300")
    monkeypatch.setenv("PARADISE_DATA_DIR", "state")
    monkeypatch.setenv("PARADISE_SETUP_TIMEOUT", "42")
    options = resolve_options(parse_setup_words(["--status", "-y", "--show-token", "bob"]))
    assert options.action == "status" and options.assume_yes and options.show_token
    assert options.port == 8300 and options.setup_timeout == 42 and options.bridge_wait == 60
    assert options.data_dir == tmp_path / "state" and options.token_file == tmp_path / "state" / "tokens" / "bob"
    assert options.workspace == tmp_path and options.profile == "comprehensive"
    assert resolve_options(parse_setup_words(["--port=8400"])).port == 8400  # --port over PARADISE_PORT


def test_the_last_action_wins_like_the_shell_script() -> None:
    assert resolve_options(parse_setup_words(["--status", "--stop"])).action == "stop"


@pytest.mark.parametrize(("words", "message"), [
    (["Not_A_Name"], "client name 'Not_A_Name' is not valid: use 1-40 lower-case letters, digits and '-', "
                     "starting with a letter or digit"),
    (["a" * 41], "is not valid"),
    (["a", "b", "c", "d"], "too many arguments: d"),
    (["--bogus"], "unknown option --bogus"),
    (["--runtime", "kubernetes"], "--runtime must be auto, docker or process"),
    (["--port", "80a"], "--port needs a number"),
    (["--port", "70000"], "--port must be between 1 and 65535"),
    (["--port"], "argument --port: expected one argument"),
])
def test_usage_errors_say_what_is_wrong(capsys: pytest.CaptureFixture[str], words: list[str], message: str) -> None:
    error = usage_error(capsys, *words)
    assert error.startswith("devops-paradise: ") and error.endswith(" (see --help)")
    assert message in error


def test_environment_numbers_are_checked(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PARADISE_BRIDGE_WAIT", "soon")
    assert "PARADISE_BRIDGE_WAIT must be a number of seconds, got 'soon'" in usage_error(capsys)
    monkeypatch.setenv("PARADISE_BRIDGE_WAIT", "1")
    monkeypatch.setenv("PARADISE_PORT", "http")
    assert "the port must be a number, got 'http'" in usage_error(capsys)


def test_the_wrapper_name_prefixes_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(COMMAND_VARIABLE, "/src/paradise/start-devops-paradise.sh")
    assert usage_error(capsys, "--bogus").startswith("start-devops-paradise: unknown option --bogus")
    assert program_name("C:\\Program Files\\x\\start-devops-paradise.ps1").endswith("start-devops-paradise")
    assert program_name("devops-paradise setup") == "devops-paradise"


def test_the_top_level_command_routes_setup(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["setup", "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "usage: devops-paradise setup [options] [CLIENT_NAME] [WORKSPACE] [QUALITY_PROFILE]" in out
    for option in ("--status", "--stop", "--remove", "--runtime", "--port", "--show-token", "--yes"):
        assert option in out
    assert "PARADISE_SETUP_TIMEOUT" in out and "PARADISE_BRIDGE_WAIT" in out


def test_default_client_is_a_valid_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "Jane.Doe")
    monkeypatch.setattr("socket.gethostname", lambda: "Build_Box.example.com")
    assert default_client() == "jane-doe-build-box"
    monkeypatch.setattr("getpass.getuser", lambda: "__")
    monkeypatch.setattr("socket.gethostname", lambda: "-" * 50)
    assert default_client() == "paradise-user"
