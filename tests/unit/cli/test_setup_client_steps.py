"""Setup's client steps (bridge/cli/setup/steps.py, 5-8) through the typed admin client, against the bridge's real
admin routes (tests/unit/cli/admin_bridge.py): what setup asks the bridge, what it keeps (the token file, the
undo), what it shows, and the one sentence it ends with when the bridge refuses, told apart by the bridge's
error code and status (a 404 means "register it"; any other refusal stops the run)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.cli.setup.context import Reporter, SetupFailed
from bridge.cli.setup.steps import SetupRun
from bridge.errors import Conflict, Unavailable
from tests.unit.cli.admin_bridge import TOKEN, Clients, admin_api
from tests.unit.cli.test_setup_steps import options


@pytest.fixture
def clients() -> Clients:
    return Clients()


@pytest.fixture
def run(clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SetupRun]:
    (tmp_path / "data").mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", TOKEN)
    with admin_api(clients, tmp_path / "data") as url:
        o = options(tmp_path, workspace=workspace, port=int(url.rsplit(":", 1)[1]))
        yield SetupRun(o, Reporter(o, log_path=o.setup_log))


def test_a_new_client_is_registered_its_token_kept_and_undone_when_the_run_fails(
        run: SetupRun, clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run.register_client()
    assert clients.asked == ["view alice", "register alice wait=0"]
    o = run.o
    assert o.token_file.read_text() == "client-token-alice-1\n"
    assert stat.S_IMODE(o.token_file.stat().st_mode) == 0o600
    assert f"    registered; token stored in {o.token_file} (mode 600)\n" in capsys.readouterr().out
    assert "client-token-alice-1" not in o.setup_log.read_text()

    assert run.r.finish_failed("the instances of alice did not become ready") == 1
    assert clients.asked[-1] == "delete alice" and clients.views == {} and not o.token_file.exists()


def test_a_refused_registration_ends_with_the_bridges_words(run: SetupRun, clients: Clients) -> None:
    clients.refuse = Conflict("workspace overlaps client 'bob'")
    with pytest.raises(SetupFailed, match=r"^registering client alice failed: 409: workspace overlaps client 'bob'$"):
        run.register_client()
    assert "client" not in run.r.undo


def test_only_a_404_means_the_client_is_new(run: SetupRun, clients: Clients, monkeypatch: pytest.MonkeyPatch) -> None:
    def busy(client_id: str) -> None:
        raise Unavailable("the database is locked", retry_after=1)

    monkeypatch.setattr(clients, "view", busy)
    with pytest.raises(SetupFailed, match=r"^asking the bridge about client alice failed: 503: the database is "
                       r"locked$"):
        run.register_client()
    assert not any(asked.startswith("register") for asked in clients.asked)


def test_an_existing_client_is_restarted_when_failed_and_given_a_new_token_when_none_is_kept(
        run: SetupRun, clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    clients.add("alice", run.o.workspace, state="failed")
    run.register_client()
    assert clients.asked == ["view alice", "restart alice", "token alice"]
    assert run.o.token_file.read_text() == "client-token-alice-1\n"
    out = capsys.readouterr().out
    assert "    an instance had failed: restarting the client's instances\n" in out
    assert "issued a new one into" in out and "client" not in run.r.undo  # not ours to delete

    run.register_client()  # the kept token is reused: nothing rotated
    assert clients.asked[-1] == "view alice"


def test_a_client_of_another_workspace_is_not_taken_over(run: SetupRun, clients: Clients, tmp_path: Path) -> None:
    clients.add("alice", tmp_path / "elsewhere")
    with pytest.raises(SetupFailed, match=r"^client alice is already registered for the workspace .*elsewhere; "):
        run.register_client()
    assert clients.asked == ["view alice"]


def test_waiting_shows_each_change_then_the_client_is_complete(
        run: SetupRun, clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run.register_client()
    clients.states = ["starting", "running"]
    run.wait_ready()
    out = capsys.readouterr().out
    assert out.endswith("      serena: starting\n      quality: starting\n      serena: running\n"
                        "      quality: running\n    all instances of alice are running\n")
    assert "client" not in run.r.undo


def test_a_failed_instance_ends_setup_with_the_client_table(
        run: SetupRun, clients: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run.register_client()
    clients.states = ["failed"]
    with pytest.raises(SetupFailed, match=r"^the instances of alice did not become ready: serena of alice failed "
                       r"to start: exit status 1$"):
        run.wait_ready()
    assert "    serena last error: exit status 1\n" in capsys.readouterr().out
    assert "serena last error: exit status 1" in run.o.setup_log.read_text()


def test_the_configuration_is_written_once_and_said(run: SetupRun, clients: Clients,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    clients.add("alice", run.o.workspace)
    run.write_config()
    mcp_json = run.o.workspace / ".mcp.json"
    assert list(json.loads(mcp_json.read_text())["mcpServers"]) == ["paradise-serena", "paradise-quality"]
    assert run.config == clients.mcp_config("alice")
    run.write_config()
    out = capsys.readouterr().out
    assert f"    wrote {mcp_json}\n" in out and f"    {mcp_json} already up to date\n" in out


def test_a_running_bridge_that_refuses_our_admin_token_is_named(
        run: SetupRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", "another-data-dirs-token")
    run.already_running = "process"
    with pytest.raises(SetupFailed, match=r"does not accept the admin token of .*\(401: missing or invalid admin "
                       r"token\); stop it"):
        run.start_bridge()
