"""The typed admin client (bridge/cli/common.py) against the bridge's real admin routes (tests/unit/cli/
admin_bridge.py): a refusal is one ``AdminError`` carrying the bridge's status, code, message and details (so
the CLI and setup tell a 404 from a 409 by its code, not by parsing words), no bridge answering is the same
error with status 0, answers are the bridge's own models, and the client commands print what they printed."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.cli import main
from bridge.cli.common import AdminClient, AdminError, WaitFailed, typed
from bridge.errors import Conflict
from bridge.models import ClientCreated, ClientView, McpConfig
from tests.unit.cli.admin_bridge import TOKEN, Clients, admin_api


@pytest.fixture
def clients() -> Clients:
    return Clients()


@pytest.fixture
def url(clients: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with admin_api(clients, tmp_path) as base:
        monkeypatch.setenv("PARADISE_URL", base)
        monkeypatch.setenv("PARADISE_ADMIN_TOKEN", TOKEN)
        yield base


def refusal(call: object) -> AdminError:
    with pytest.raises(AdminError) as refused:
        call()  # type: ignore[operator]
    return refused.value


def test_each_refusal_of_the_bridge_is_an_admin_error_with_its_code(url: str, clients: Clients,
                                                                     tmp_path: Path) -> None:
    admin = AdminClient(url, TOKEN)
    unknown = refusal(lambda: admin.client("ghost"))
    assert (unknown.status, unknown.code, unknown.message) == (404, "not_found", "no client 'ghost'")
    assert unknown.details == {"client_id": "ghost"} and unknown.exit_status == 4
    assert str(unknown) == "404: no client 'ghost'"

    invalid = refusal(lambda: admin.add_client("alice", Path("relative/ws")))
    assert (invalid.status, invalid.code, invalid.exit_status) == (422, "invalid", 1)
    assert invalid.message.startswith("workspace: ")

    clients.refuse = Conflict("workspace overlaps client 'bob'", other="bob")
    taken = refusal(lambda: admin.add_client("alice", tmp_path))
    assert (taken.status, taken.code, taken.message, taken.details) == (
        409, "conflict", "workspace overlaps client 'bob'", {"other": "bob"})

    wrong_token = refusal(lambda: AdminClient(url, "not-the-token").list_clients())
    assert (wrong_token.status, wrong_token.code) == (401, "unauthorized")


def test_no_bridge_answering_is_the_same_error_with_status_0() -> None:
    with socket.socket() as bound:  # bound, never listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{bound.getsockname()[1]}"
        gone = refusal(lambda: AdminClient(base, TOKEN).client("alice"))
        assert AdminClient(base).health() is None
    assert (gone.status, gone.code, gone.exit_status) == (0, "unreachable", 1)
    assert str(gone) == f"cannot reach the bridge at {base} (ConnectError); is it running?"


def test_an_answer_that_is_not_the_model_is_an_admin_error_too() -> None:
    odd = refusal(lambda: typed(ClientView, {"client_id": "alice"}))
    assert (odd.code, odd.status) == ("unexpected_answer", 200)
    assert odd.message.startswith("the answer is not a ClientView (")


def test_answers_are_the_bridges_models(url: str, clients: Clients, tmp_path: Path) -> None:
    admin = AdminClient(url, TOKEN)
    created = admin.add_client("alice", tmp_path, profile="quick", wait=0)
    assert isinstance(created, ClientCreated) and created.token == "client-token-alice-1"
    assert clients.asked == ["register alice wait=0"]
    shown = admin.client("alice")
    assert isinstance(shown, ClientView) and shown.workspace == str(tmp_path) and shown.profile == "quick"
    assert [c.client_id for c in admin.list_clients()] == ["alice"]
    config = admin.mcp_config("alice")
    assert isinstance(config, McpConfig) and list(config.mcpServers) == ["paradise-serena", "paradise-quality"]
    assert admin.rotate_token("alice").token == "client-token-alice-2"
    admin.delete_client("alice")
    assert refusal(lambda: admin.client("alice")).code == "not_found"


def test_json_output_is_what_the_bridge_sent(url: str, clients: Clients, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    clients.add("alice", tmp_path)
    sent = httpx.get(f"{url}/api/v1/clients/alice", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert main(["client", "show", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == sent
    assert main(["client", "show", "ghost"]) == 4
    assert capsys.readouterr().err == "devops-paradise: 404: no client 'ghost'\n"


def test_wait_ready_says_each_change_and_returns_the_running_client(url: str, clients: Clients,
                                                                    tmp_path: Path) -> None:
    clients.add("alice", tmp_path, state="starting")
    clients.states = ["starting", "starting", "running"]
    changes: list[tuple[str, str]] = []
    client = AdminClient(url, TOKEN).wait_ready("alice", timeout=60, interval=0,
                                                progress=lambda *change: changes.append(change))
    assert [i.state for i in client.instances] == ["running", "running"]
    assert changes == [("serena", "starting"), ("quality", "starting"), ("serena", "running"),
                       ("quality", "running")]
    assert clients.asked == ["view alice"] * 3


def test_wait_ready_names_the_failed_instance_or_the_time_out(url: str, clients: Clients, tmp_path: Path) -> None:
    admin = AdminClient(url, TOKEN)
    clients.add("alice", tmp_path)
    clients.states = ["starting", "failed"]
    with pytest.raises(WaitFailed, match=r"^serena of alice failed to start: exit status 1$") as failed:
        admin.wait_ready("alice", timeout=60, interval=0)
    assert failed.value.failed is not None and failed.value.failed.service == "serena"
    clients.states = ["starting"]
    with pytest.raises(WaitFailed, match=r"^instances of alice not ready within 0s \(serena starting, quality "
                       r"starting\)$") as late:
        admin.wait_ready("alice", timeout=0, interval=0)
    assert late.value.failed is None


def test_client_wait_prints_each_change_then_the_table_of_a_failure(
        url: str, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clients.add("alice", tmp_path, state="starting")
    clients.states = ["starting", "running"]
    assert main(["client", "wait", "alice", "--interval", "0"]) == 0
    assert capsys.readouterr().out == ("  serena: starting\n  quality: starting\n  serena: running\n"
                                       "  quality: running\nall instances of alice are running\n")
    clients.states = ["failed"]
    assert main(["client", "wait", "alice", "--interval", "0"]) == 1
    said = capsys.readouterr()
    assert said.out == "  serena: failed\n  quality: failed\n"
    assert "serena last error: exit status 1" in said.err
    assert said.err.endswith("devops-paradise: serena of alice failed to start: exit status 1\n")


def test_client_add_stores_the_token_or_undoes_the_registration(
        url: str, clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "tokens" / "alice"
    assert main(["client", "add", "alice", "--workspace", str(tmp_path), "--wait", "0", "--token-file",
                 str(token_file), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert "token" not in answer and answer["token_file"] == str(token_file)
    assert token_file.read_text() == "client-token-alice-1\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    (tmp_path / "blocked").write_text("a file, not a directory")
    assert main(["client", "add", "bob", "--workspace", str(tmp_path), "--wait", "0", "--token-file",
                 str(tmp_path / "blocked" / "bob")]) == 1
    assert "registration undone" in capsys.readouterr().err
    assert clients.asked[-2:] == ["register bob wait=0", "delete bob"] and "bob" not in clients.views
