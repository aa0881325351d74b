from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from bridge import store
from bridge.errors import PortPoolExhausted
from bridge.ports import PortAllocator, port_is_free
from tests.helpers import free_block


@pytest.fixture
def allocator(tmp_path) -> PortAllocator:
    first = free_block(12)
    return PortAllocator(store.make_engine(f"sqlite:///{tmp_path / 'p.db'}"), range(first, first + 12))


def test_leases_are_unique_under_concurrency(allocator: PortAllocator) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        ports = list(pool.map(lambda i: allocator.lease(client_id=f"c{i}", service="s"), range(12)))
    assert sorted(ports) == list(allocator.pool)
    with pytest.raises(PortPoolExhausted) as caught:
        allocator.lease(client_id="late", service="s")
    assert allocator.range_text in caught.value.message
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]


def test_release_gives_ports_back_and_leases_persist(allocator: PortAllocator, tmp_path) -> None:
    a = allocator.lease(client_id="a", service="serena")
    b = allocator.lease(client_id="a", service="quality")
    c = allocator.lease(client_id="b", service="serena")
    # A second allocator on the same database (a restarted bridge) sees the same leases.
    again = PortAllocator(allocator.engine, allocator.pool)
    assert again.usage() == (3, 12)
    assert sorted(again.release(client_id="a")) == [a, b]
    assert again.lease(client_id="c", service="x") == a
    assert c not in (a, b)


def test_a_port_taken_by_another_program_is_skipped_and_recorded(allocator: PortAllocator) -> None:
    squatted = allocator.pool.start
    with socket.create_server(("127.0.0.1", squatted)):
        assert not port_is_free(squatted)
        port = allocator.lease(client_id="a", service="s")
    assert port == squatted + 1
    with store.session(allocator.engine) as db:
        events = store.list_events(db)
    assert events[0].kind == "port.conflict" and str(squatted) in events[0].message
