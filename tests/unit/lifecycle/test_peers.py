"""Peer headers (quality -> Serena): computed from the peer's live route, renewed on its every launch, gone
while it is down, and addressed the way each runtime lets one instance reach another."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.catalog import ServiceSpec
from bridge.catalog.services import CatalogError, load_catalog
from bridge.lifecycle.peers import NAMES_HEADER, PeerLinks
from bridge.lifecycle.routes import Route
from bridge.models import InstanceState
from bridge.runtime.docker import DockerRuntime
from tests.unit.lifecycle import conftest as lifecycle
from tests.unit.lifecycle.conftest import Lifecycle, MakeLifecycle, until
from tests.unit.lifecycle.fakes import FakeRuntime

URL = "X-Paradise-Peer-Buddy-Url"
KEY = "X-Paradise-Peer-Buddy-Key"


@pytest.fixture
def peer_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """``asker`` declares ``buddy`` as its peer (as quality declares serena); ``buddy`` declares none."""
    monkeypatch.setitem(lifecycle.CATALOG, "buddy", ServiceSpec(name="buddy", command=["fake"], container_port=8123))
    monkeypatch.setitem(lifecycle.CATALOG, "asker", ServiceSpec(name="asker", command=["fake"], peers=["buddy"]))


async def both(make_lifecycle: MakeLifecycle) -> Lifecycle:
    life = await make_lifecycle()
    await life.register("alice", ["buddy", "asker"])
    return life


@pytest.mark.usefixtures("peer_catalog")
async def test_the_asker_gets_the_peers_loopback_address_and_current_key(make_lifecycle: MakeLifecycle) -> None:
    life = await both(make_lifecycle)
    buddy, asker = life.route("alice", "buddy"), life.route("alice", "asker")
    assert buddy.state == InstanceState.RUNNING and buddy.instance_key
    assert asker.peer_headers == {
        NAMES_HEADER: "buddy",
        URL: f"http://127.0.0.1:{buddy.port}/mcp",
        KEY: buddy.instance_key,
    }
    assert buddy.peer_headers == {}  # it declares no peers: nothing extra is sent to it
    # The key travels only in request headers: not in the asker's environment, not in a view or an event.
    asker_env = life.runtime.live("alice", "asker").spec.env
    assert buddy.instance_key not in asker_env.values()
    shown = life.manager.view("alice").model_dump_json() + "".join(e.message for e in life.manager.events.recent())
    assert buddy.instance_key not in shown


@pytest.mark.usefixtures("peer_catalog")
async def test_a_relaunched_peer_is_followed_and_a_stopped_one_is_dropped(make_lifecycle: MakeLifecycle) -> None:
    life = await both(make_lifecycle)
    buddy, asker = life.route("alice", "buddy"), life.route("alice", "asker")
    first_key = buddy.instance_key
    await life.instances.restart(buddy)
    await until(lambda: buddy.state == InstanceState.RUNNING)
    assert buddy.instance_key != first_key
    assert asker.peer_headers[KEY] == buddy.instance_key  # the new launch's key, not the dead one's
    assert asker.peer_headers[URL] == f"http://127.0.0.1:{buddy.port}/mcp"

    await life.instances.idle(buddy, "test")
    assert buddy.state == InstanceState.IDLE
    assert asker.peer_headers == {NAMES_HEADER: "buddy"}  # still a proxied request, but no peer to call now

    await life.manager.wait_ready("alice", "buddy")  # woken: a fresh key again, published again
    assert asker.peer_headers[KEY] == buddy.instance_key and asker.peer_headers[KEY] != first_key


@pytest.mark.usefixtures("peer_catalog")
async def test_a_crashed_peer_is_not_advertised_while_it_restarts(make_lifecycle: MakeLifecycle) -> None:
    life = await both(make_lifecycle)
    buddy, asker = life.route("alice", "buddy"), life.route("alice", "asker")
    assert KEY in asker.peer_headers
    await life.runtime.kill("alice", "buddy")
    life.table.transition(buddy, InstanceState.RESTARTING, step="restarting")  # what the health monitor does on a crash
    assert URL not in asker.peer_headers and KEY not in asker.peer_headers


@pytest.mark.usefixtures("peer_catalog")
async def test_without_the_peer_among_the_clients_services_only_the_names_are_sent(
    make_lifecycle: MakeLifecycle,
) -> None:
    life = await make_lifecycle()
    await life.register("bob", ["asker"])
    assert life.route("bob", "asker").peer_headers == {NAMES_HEADER: "buddy"}


def _route(service: str, port: int, key: str | None, state: InstanceState = InstanceState.RUNNING) -> Route:
    return Route("carol", service, port, "/mcp", "streamable-http", state, {}, instance_key=key)


def test_a_container_reaches_its_peer_by_name_on_the_clients_network() -> None:
    catalog = {
        "serena": ServiceSpec(name="serena", image="x", container_port=8000),
        "quality": ServiceSpec(name="quality", image="y", peers=["serena"]),
    }
    serena, quality = _route("serena", 8205, "k" * 43), _route("quality", 8206, "q" * 43)
    PeerLinks(catalog, DockerRuntime(client=object())).__call__([serena, quality])
    assert quality.peer_headers["X-Paradise-Peer-Serena-Url"] == "http://paradise-carol-serena:8000/mcp"
    assert quality.peer_headers["X-Paradise-Peer-Serena-Key"] == "k" * 43
    PeerLinks(catalog, FakeRuntime())([serena, quality])  # the process runtime's way: the host's loopback
    assert quality.peer_headers["X-Paradise-Peer-Serena-Url"] == "http://127.0.0.1:8205/mcp"
    serena.state = InstanceState.PAUSED  # frozen: a call would hang until it is thawed, so it is not advertised
    PeerLinks(catalog, FakeRuntime())([serena, quality])
    assert quality.peer_headers == {NAMES_HEADER: "serena"}


def test_the_builtin_quality_service_declares_serena_and_bad_peer_names_are_refused(tmp_path: Path) -> None:
    catalog = load_catalog()
    assert catalog["quality"].peers == ["serena"] and catalog["serena"].peers == []
    bad = tmp_path / "catalog.toml"
    bad.write_text('[services.quality]\npeers = ["Serena: x"]\n')
    with pytest.raises(CatalogError, match="peers"):
        load_catalog(bad)
