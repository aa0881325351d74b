"""Workspaces: only under the roots, never the system, and never a directory swapped in after registration.

Registration over HTTP against the whole bridge in-process (tests/inprocess/, real fixture MCP servers);
the location rules also as a pure function.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from bridge import store
from bridge.errors import Conflict
from bridge.workspaces import WorkspaceIdentity, location_problem, refuse_overlap
from tests.helpers import fixture_catalog
from tests.inprocess import InProcessBridge, serving_inprocess

pytestmark = pytest.mark.inprocess
HOME = Path("/home/alice")
DATA = HOME / ".devops-paradise"


def problem(path: str, roots: tuple[str, ...] = ("/home/alice",)) -> str | None:
    return location_problem(Path(path), roots=tuple(map(Path, roots)), home=HOME, data_dir=DATA)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/", "root of the file system"),
        ("/etc", "system directory"),
        ("/etc/ssh", "system directory (under /etc)"),
        ("/usr/local/src", "system directory (under /usr)"),
        ("/lib64", "system directory"),
        ("/proc/1", "system directory"),
        ("/var/lib/docker", "system directory"),
        ("/home", "shared system directory"),
        ("/tmp", "shared system directory"),
        ("/root", "shared system directory"),
        ("/home/alice", "whole home directory"),
        ("/home/alice/.devops-paradise", "overlaps the bridge's data dir"),
        ("/home/alice/.devops-paradise/instances/bob", "overlaps the bridge's data dir"),
        ("/home/bob/project", "outside the workspace roots"),
        ("/srv/projects/x", "outside the workspace roots"),
    ],
)
def test_refused_locations(path: str, words: str) -> None:
    reason = problem(path)
    assert reason is not None and words in reason


def test_allowed_locations() -> None:
    assert problem("/home/alice/src/project") is None
    assert problem("/srv/projects/x", roots=("/home/alice", "/srv/projects")) is None
    assert problem("/srv/projects", roots=("/srv/projects",)) is None  # setup adds the workspace itself
    assert problem("/etc/x", roots=("/etc",)) is not None  # a root never opens the system
    assert problem("/home/alice/src", roots=("/",)) is not None  # a home of "/" allows nothing
    # A workspace that contains the data dir would hand a tenant the admin token.
    assert "data dir" in (location_problem(Path("/srv/w"), roots=(Path("/srv/w"),), home=HOME,
                                           data_dir=Path("/srv/w/state")) or "")


def test_identity_round_trip_and_old_rows() -> None:
    identity = WorkspaceIdentity(dev=2049, ino=2**63 + 5, uid=1000)  # an inode beyond a signed 64-bit column
    assert WorkspaceIdentity.from_json(identity.as_json()) == identity
    assert WorkspaceIdentity.from_json(None) is None
    assert WorkspaceIdentity.from_json({"dev": 1}) is None


def test_an_older_database_gets_the_identity_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text("CREATE TABLE client (id VARCHAR(40) PRIMARY KEY, workspace VARCHAR NOT NULL, "
                          "profile VARCHAR NOT NULL, token_hash VARCHAR NOT NULL, created_at DATETIME NOT NULL)"))
    old.dispose()
    engine = store.make_engine(url)
    assert "workspace_identity" in {c["name"] for c in inspect(engine).get_columns("client")}
    engine.dispose()


# ---- over HTTP, against a running bridge --------------------------------------------------------------


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roots").resolve()


@pytest.fixture(scope="module")
def rooted(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[InProcessBridge]:
    """A bridge whose only workspace root is ``roots`` (the other tests' bridges accept the whole temp dir)."""
    base = tmp_path_factory.mktemp("rooted")
    catalog = fixture_catalog(base / "catalog.toml")
    env = {"PARADISE_CATALOG": str(catalog), "PARADISE_WORKSPACE_ROOTS": str(roots),
           "PARADISE_SHARED_WORKSPACES": "false"}  # the overlap tests below need the default rule
    proc = InProcessBridge(base / "data", env=env)
    with serving_inprocess(proc):
        yield proc


def refused(bridge: InProcessBridge, client_id: str, workspace: Path | str) -> str:
    resp = bridge.api("POST", "/clients", json={"client_id": client_id, "workspace": str(workspace),
                                                "services": ["echo"]})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid" and error["details"] == {"field": "workspace"}
    assert bridge.api("GET", f"/clients/{client_id}").status_code == 404  # nothing half-made
    return error["message"]


@pytest.mark.parametrize(
    ("workspace", "words"),
    [("/", "root of the file system"), ("/etc", "system directory"), ("/usr/share", "system directory"),
     ("/proc/self", "system directory"), ("/tmp", "shared system directory")],
)
def test_system_directories_are_refused_with_the_reason(rooted: InProcessBridge, workspace: str, words: str) -> None:
    message = refused(rooted, "sys", workspace)
    assert message.startswith("workspace refused:") and words in message


def test_outside_the_roots_is_refused(rooted: InProcessBridge, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert "outside the workspace roots" in refused(rooted, "outsider", outside)


def test_a_symlink_inside_the_roots_to_outside_is_refused(rooted: InProcessBridge, roots: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret-project"
    outside.mkdir()
    link = roots / "innocent-link"
    link.symlink_to(outside)
    message = refused(rooted, "linker", link)
    assert str(outside) in message and "outside the workspace roots" in message  # judged by where it leads


def test_the_bridge_data_dir_is_refused(rooted: InProcessBridge) -> None:
    assert "overlaps the bridge's data dir" in refused(rooted, "datadir", rooted.data_dir)


def test_inside_the_roots_is_registered_with_its_resolved_path(rooted: InProcessBridge, roots: Path) -> None:
    (roots / "real-project").mkdir()
    (roots / "alias").symlink_to(roots / "real-project")
    created = rooted.register("inside", roots / "alias", ["echo"])
    assert created["workspace"] == str(roots / "real-project")
    assert rooted.api("DELETE", "/clients/inside").status_code == 204


def swap_and_restart(bridge: InProcessBridge, client_id: str, workspace: Path, swap) -> dict:
    """Register on ``workspace``, ``swap`` it, restart the client: the instance's state afterwards."""
    bridge.register(client_id, workspace, ["echo"])
    assert bridge.state(client_id, "echo")["state"] == "running"
    swap(workspace)
    assert bridge.api("POST", f"/clients/{client_id}/restart").status_code == 200
    return bridge.wait_state(client_id, "echo", {"failed", "running"}, timeout=60)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("symlink", "was replaced by a symlink to"),
        ("other-dir", "was replaced by another directory"),
        ("deleted", "no longer exists"),
        ("parent-symlink", "a directory above it was replaced by a symlink"),
    ],
)
def test_a_swapped_workspace_fails_the_next_start(rooted: InProcessBridge, roots: Path, name: str, words: str) -> None:
    victim = roots / f"victim-{name}"  # someone else's directory the tenant would like mounted
    victim.mkdir()
    (victim / "private.txt").write_text("not yours")
    parent = roots / f"tenant-{name}"
    workspace = parent / "ws"
    workspace.mkdir(parents=True)

    def swap(path: Path) -> None:
        if name == "symlink":
            path.rename(path.with_name("ws.registered"))
            path.symlink_to(victim)
        elif name == "other-dir":  # the old one kept meanwhile, so its inode number cannot be reused
            path.rename(path.with_name("ws.registered"))
            path.mkdir()
        elif name == "deleted":
            shutil.rmtree(path)
        else:  # the workspace's parent becomes a link to a tree holding a "ws" of someone else
            (victim / "ws").mkdir()
            parent.rename(parent.with_name(parent.name + ".registered"))
            parent.symlink_to(victim)

    client_id = f"swap-{name}"
    inst = swap_and_restart(rooted, client_id, workspace, swap)
    assert inst["state"] == "failed", inst
    assert words in inst["last_error"] and str(workspace) in inst["last_error"], inst["last_error"]
    events = rooted.api("GET", "/events", params={"client_id": client_id, "limit": 50}).json()
    assert any(e["kind"] == "instance.failed" and words in e["message"] for e in events)
    assert rooted.api("DELETE", f"/clients/{client_id}").status_code == 204


def test_an_untouched_workspace_restarts_normally(rooted: InProcessBridge, roots: Path) -> None:
    workspace = roots / "steady"
    workspace.mkdir()
    inst = swap_and_restart(rooted, "steady", workspace, lambda path: os.utime(path))
    assert inst["state"] == "running" and inst["last_error"] is None
    assert rooted.api("DELETE", "/clients/steady").status_code == 204


# ---- one client's workspace is not another's --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "relation"),
    [("/w/alice", "is the workspace of"), ("/w/alice/sub", "lies inside"), ("/w", "contains the workspace of")],
)
def test_overlap_is_a_conflict(path: str, relation: str) -> None:
    with pytest.raises(Conflict) as caught:
        refuse_overlap(Path(path), [("bob", "/srv/bob"), ("alice", "/w/alice")])
    assert relation in caught.value.message and "'alice'" in caught.value.message
    assert caught.value.details == {"field": "workspace", "client_id": "alice"}


def test_neighbours_with_a_common_prefix_do_not_overlap() -> None:
    refuse_overlap(Path("/w/alice2"), [("alice", "/w/alice"), ("ab", "/w/a")])


def test_a_workspace_overlapping_another_clients_is_a_409(rooted: InProcessBridge, roots: Path) -> None:
    first = roots / "shared" / "alice"
    (first / "sub").mkdir(parents=True)
    rooted.register("ov-alice", first, ["echo"], wait=0)
    try:
        for candidate in (first, first / "sub", roots / "shared"):
            resp = rooted.api("POST", "/clients", json={"client_id": "ov-bob", "workspace": str(candidate),
                                                        "services": ["echo"]})
            assert resp.status_code == 409, resp.text
            error = resp.json()["error"]
            assert error["code"] == "conflict" and error["details"] == {"field": "workspace", "client_id": "ov-alice"}
            assert "PARADISE_SHARED_WORKSPACES" in error["message"]
            assert rooted.api("GET", "/clients/ov-bob").status_code == 404  # nothing half-made
            assert all(lease["client_id"] != "ov-bob" for lease in rooted.api("GET", "/ports").json())
    finally:
        rooted.api("DELETE", "/clients/ov-alice")
