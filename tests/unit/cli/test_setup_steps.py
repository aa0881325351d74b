"""The pieces every setup step stands on: the setup log and what the pieces setup calls have to say, the undo
list of a failing run, questions without a terminal, and the probes of this machine (a real socket, a real
process, a real log file)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli.setup.context import Reporter, SetupOptions
from bridge.cli.setup.machine import MachineSteps, last_line, live_pid, port_taken


def options(tmp_path: Path, **changes: object) -> SetupOptions:
    values: dict[str, object] = dict(
        action="setup", client="alice", workspace=tmp_path, profile="quick", runtime_arg="", port=8100,
        show_token=False, assume_yes=False, data_dir=tmp_path / "data", repo_dir=tmp_path,
        command="/src/start-devops-paradise.sh", setup_timeout=600, bridge_wait=60, given_venv=None,
    )
    values.update(changes)
    return SetupOptions(**values)  # type: ignore[arg-type]


@pytest.fixture
def report(tmp_path: Path) -> Reporter:
    (tmp_path / "data").mkdir()
    return Reporter(options(tmp_path), log_path=tmp_path / "data" / "setup.log")


def test_steps_are_numbered_and_logged(report: Reporter, capsys: pytest.CaptureFixture[str]) -> None:
    report.step("Checking prerequisites")
    report.info("python    3.11")
    report.warn("node was not found")
    out = capsys.readouterr().out
    assert "\n==> [1/10] Checking prerequisites   (0s)\n    python    3.11\n    warning: node was not found\n" in out
    assert report.log_path is not None
    assert report.log_path.read_text() == "== Checking prerequisites (0s)\nwarning: node was not found\n"


def test_what_a_piece_says_is_logged_and_shown_line_by_line(report: Reporter,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    report.say("wrote /ws/.mcp.json")
    report.say("client     alice\n\nserena last error: exit status 1")
    assert capsys.readouterr().out == ("    wrote /ws/.mcp.json\n    client     alice\n    \n"
                                       "    serena last error: exit status 1\n")
    assert report.log_path is not None
    assert report.log_path.read_text().splitlines() == [
        "wrote /ws/.mcp.json", "client     alice", "", "serena last error: exit status 1"]


def test_a_failure_undoes_in_reverse_order_and_goes_on_past_a_broken_undo(
        report: Reporter, capsys: pytest.CaptureFixture[str]) -> None:
    done: list[str] = []

    def broken() -> None:
        raise OSError("disk gone")

    report.undo["bridge"] = lambda: done.append("bridge")
    report.undo["venv"] = broken
    report.undo["client"] = lambda: done.append("client")
    assert report.finish_failed("registering client alice failed: 503: no free port") == 1
    assert done == ["client", "bridge"] and report.undo == {}
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == ["start-devops-paradise: error: registering client alice failed: 503: no free port",
                        f"start-devops-paradise: log: {report.log_path}"]
    assert report.log_path is not None
    log = report.log_path.read_text()
    assert "rollback: venv failed (OSError: disk gone)" in log and "FAILED: registering client alice" in log


def test_questions_take_the_default_without_a_terminal(report: Reporter, tmp_path: Path) -> None:
    with open(os.devnull) as no_terminal:
        sys_stdin, sys.stdin = sys.stdin, no_terminal
        try:
            assert report.confirm("Build the images?", True) is True
            assert report.confirm("Delete client alice?", False) is False
            assert Reporter(options(tmp_path, assume_yes=True)).confirm("Delete client alice?", False) is True
        finally:
            sys.stdin = sys_stdin


def test_port_taken_sees_a_real_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_taken(port)
    assert not port_taken(port)


def test_live_pid_tells_a_running_process_from_a_finished_one(tmp_path: Path) -> None:
    pid_file = tmp_path / "bridge.pid"
    assert live_pid(pid_file) is None
    pid_file.write_text(f"{os.getpid()}\n")
    assert live_pid(pid_file) == os.getpid()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    pid_file.write_text(finished.stdout)
    assert live_pid(pid_file) is None
    pid_file.write_text("not a pid")
    assert live_pid(pid_file) is None


def test_last_line_of_a_log_without_the_cli_prefix(tmp_path: Path) -> None:
    log = tmp_path / "bridge.log"
    log.write_text("starting\ndevops-paradise: PARADISE_PORT_RANGE: 'x' is not a port range\n\n")
    assert last_line(log) == "PARADISE_PORT_RANGE: 'x' is not a port range"
    assert last_line(tmp_path / "missing.log") == ""


def test_the_runtime_asked_for_then_the_last_one_then_the_setting(
        tmp_path: Path, report: Reporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARADISE_RUNTIME", raising=False)
    steps = MachineSteps(options(tmp_path), report)
    assert steps.wanted_runtime() == ("auto", "PARADISE_RUNTIME")
    monkeypatch.setenv("PARADISE_RUNTIME", "docker")
    assert steps.wanted_runtime() == ("docker", "PARADISE_RUNTIME")
    (tmp_path / "data" / "runtime").write_text("process\n")
    assert steps.wanted_runtime() == ("process", "used last time; --runtime to change")
    asked = MachineSteps(options(tmp_path, runtime_arg="docker"), report)
    assert asked.wanted_runtime() == ("docker", "asked for")


def test_an_unknown_profile_names_the_known_ones(tmp_path: Path, report: Reporter,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from bridge.cli.setup.context import SetupFailed

    with pytest.raises(SetupFailed, match=r"unknown quality profile 'fastest'; choose one of: .*comprehensive"):
        MachineSteps(options(tmp_path, profile="fastest"), report).python_environment()
    MachineSteps(options(tmp_path, profile="python"), report).python_environment()


@pytest.fixture
def no_bridge_no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """No bridge on the port, no Docker engine behind DOCKER_HOST: the machine as a laptop without Docker."""
    from tests.helpers import free_block

    for name in list(os.environ):
        if name.startswith("PARADISE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PARADISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    return free_block(1)


@pytest.mark.parametrize(("runtime_arg", "said"), [
    ("process", "    process runtime (asked for)\n"),
    ("", "    process runtime: no Docker engine answers (DockerException)"),
])
def test_the_runtime_comes_from_the_shared_selection_table(
        tmp_path: Path, report: Reporter, capsys: pytest.CaptureFixture[str], no_bridge_no_engine: int,
        runtime_arg: str, said: str) -> None:
    steps = MachineSteps(options(tmp_path, runtime_arg=runtime_arg, port=no_bridge_no_engine), report)
    steps.choose_runtime()
    assert steps.runtime == "process" and steps.already_running is None
    assert said in capsys.readouterr().out


def test_docker_asked_for_without_an_engine_fails_in_one_sentence(
        tmp_path: Path, report: Reporter, no_bridge_no_engine: int) -> None:
    from bridge.cli.setup.context import SetupFailed

    steps = MachineSteps(options(tmp_path, runtime_arg="docker", port=no_bridge_no_engine), report)
    with pytest.raises(SetupFailed, match=r"^the docker runtime was asked for but no Docker engine answers; "):
        steps.choose_runtime()


def test_an_unknown_remembered_runtime_is_refused(tmp_path: Path, report: Reporter, no_bridge_no_engine: int) -> None:
    from bridge.cli.setup.context import SetupFailed

    (tmp_path / "data" / "runtime").write_text("kubernetes\n")
    steps = MachineSteps(options(tmp_path, port=no_bridge_no_engine), report)
    with pytest.raises(SetupFailed, match=r"^the kubernetes runtime cannot run here: unknown runtime 'kubernetes'"):
        steps.choose_runtime()
