"""A root bridge's per-client sandbox uids (bridge/runtime/grants.py): one uid per client, the same after a
restart, never shared, never root, allocated safely when a client's instances start at once."""

from __future__ import annotations

import concurrent.futures

import pytest

from bridge.runtime.base import RuntimeOperationError
from bridge.runtime.grants import SandboxUids


def test_each_client_gets_its_own_uid_and_keeps_it(tmp_path) -> None:
    uids = SandboxUids.parse(tmp_path, "300000-300010")
    alice, bob = uids.who("alice"), uids.who("bob")
    assert alice.uid != bob.uid and 0 not in (alice.uid, bob.uid)
    assert alice.groups == bob.groups == frozenset({300000})  # the shared group, for passing only
    assert alice.uid != 300000  # the group's id is never a tenant's uid
    again = SandboxUids.parse(tmp_path, "300000-300010")  # a restarted bridge
    assert again.who("alice") == alice


def test_concurrent_starts_of_one_client_agree(tmp_path) -> None:
    uids = SandboxUids.parse(tmp_path, "300000-300100")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: uids.who(f"client-{i % 4}").uid, range(64)))
    assert len(set(got)) == 4


def test_a_released_uid_is_free_again_and_an_exhausted_range_says_so(tmp_path) -> None:
    uids = SandboxUids.parse(tmp_path, "300000-300002")
    first, second = uids.who("a").uid, uids.who("b").uid
    with pytest.raises(RuntimeOperationError, match="no free uid"):
        uids.who("c")
    uids.release("a")
    assert uids.who("c").uid == first and second != first


def test_a_range_that_includes_root_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError):
        SandboxUids.parse(tmp_path, "0-100")


@pytest.mark.parametrize("value", ["0-100", "500-400", "abc", "200000"])
def test_the_setting_refuses_what_is_not_an_unprivileged_range(tmp_path, value) -> None:
    from pydantic import ValidationError

    from bridge.settings import BridgeSettings

    with pytest.raises(ValidationError, match="SANDBOX_UIDS"):
        BridgeSettings(data_dir=tmp_path, sandbox_uids=value)
