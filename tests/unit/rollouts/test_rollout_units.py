"""The rollout parts that need no bridge: catalog versions, the gate's rules, the database's one-rollout lock
and an older database gaining the version columns."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from bridge import store
from bridge.catalog import ServiceSpec
from bridge.catalog.versions import identify, known, runs, versioned
from bridge.models import InstanceState, Rollout
from bridge.observability.metrics import LATENCY_BUCKETS
from bridge.rollout_settings import parse_waves
from bridge.rollouts import gate
from bridge.settings import load_settings

# ---- versions ----------------------------------------------------------------------------------------


def entry(**versions: dict) -> ServiceSpec:
    return ServiceSpec(name="svc", command=["run", "{port}"], env={"A": "1", "B": "1"}, version="v1",
                       versions=versions)  # fmt: skip


def test_a_version_overrides_the_entry_and_merges_its_env() -> None:
    spec = entry(v2={"env": {"B": "2"}, "args": ["--fast"]}, v3={"package": "npm:x@1.0.0"})
    two = versioned(spec, "v2")
    assert (two.version, two.env, two.args, two.command) == ("v2", {"A": "1", "B": "2"}, ["--fast"], ["run", "{port}"])
    three = versioned(spec, "v3")
    assert three.package == "npm:x@1.0.0" and three.command is None  # a package replaces the command
    assert versioned(spec, "v1") is spec and versioned(spec, None) is spec and versioned(spec, "gone") is spec
    assert known(spec) == ["v1", "v2", "v3"]
    assert [runs(spec, name) for name in ("v2", "v1", "gone", None)] == ["v2", "v1", "v1", "v1"]  # as views say
    assert known(ServiceSpec(name="x", command=["a"])) == ["default"]


@pytest.mark.parametrize(
    ("versions", "said"),
    [({"v2": {"path": "/other"}}, "cannot be overridden"), ({"bad name": {}}, "must match"),
     ({"v2": {"env": "A=1"}}, "env must be a dict")],
)  # fmt: skip
def test_a_malformed_version_is_refused_with_its_name(versions: dict, said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        entry(**versions)


async def test_the_version_id_follows_what_runs() -> None:
    settings = load_settings(admin_token="x" * 20)
    process = SimpleNamespace(name="process")
    spec = entry(v2={"env": {"B": "2"}})
    one, again, two = [await identify(process, s, settings) for s in (spec, spec, versioned(spec, "v2"))]
    assert one == again and one != two and one.startswith("cmd-")
    images = SimpleNamespace(get=lambda name: SimpleNamespace(id="sha256:" + "ab" * 32))
    docker = SimpleNamespace(name="docker", client=SimpleNamespace(images=images))
    assert await identify(docker, ServiceSpec(name="s", image="img:1"), settings) == "img:1@" + "ab" * 6


def test_waves_rise_and_end_at_100() -> None:
    assert parse_waves("10, 25,50,100") == [10, 25, 50, 100]
    for bad in ("10,50", "50,10,100", "0,100", "10,10,100", "a,100", ""):
        with pytest.raises(ValueError, match="waves"):
            parse_waves(bad)


# ---- the gate ----------------------------------------------------------------------------------------


def route(name: str, state: InstanceState = InstanceState.RUNNING, restarts: int = 0) -> SimpleNamespace:
    return SimpleNamespace(client_id=name, service="svc", key=(name, "svc"), state=state, restarts=restarts,
                           last_error=None)  # fmt: skip


def sample(calls: int, failed: int = 0, seconds: float = 0.004, restarts: int = 0) -> gate.Sample:
    buckets = [0] * len(LATENCY_BUCKETS)
    buckets[next(i for i, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound)] = calls
    return gate.Sample(calls, failed, buckets, restarts)


def judge(wave: dict, rest: dict, routes: list | None = None, **settings: str) -> str | None:
    config = load_settings(admin_token="x" * 20, **settings)
    routes = routes or [route("w")]
    before = {(n, "svc"): gate.Sample() for n in [*wave, *rest]}
    after = {(n, "svc"): s for n, s in {**wave, **rest}.items()}
    reason, _ = gate.judge(config, routes, [route(n) for n in rest], before, after)
    return reason


def test_the_gate_passes_a_wave_like_the_rest() -> None:
    assert judge({"w": sample(20, 0)}, {"r": sample(60, 0)}) is None
    assert judge({"w": sample(20, 1)}, {"r": sample(60, 2)}) is None  # 5% against 3%: within the margin


def test_the_gate_fails_errors_and_latency_beyond_the_rest() -> None:
    assert "error rate 50.0%" in judge({"w": sample(20, 10)}, {"r": sample(60, 0)})
    assert "p95 latency 1000 ms" in judge({"w": sample(20, 0, seconds=0.9)}, {"r": sample(60, 0, seconds=0.2)})
    # Tiny latencies are never compared, however many times larger (bucket resolution).
    assert judge({"w": sample(20, 0, seconds=0.04)}, {"r": sample(60, 0, seconds=0.004)}) is None


def test_the_gate_needs_enough_calls_to_judge_traffic() -> None:
    assert judge({"w": sample(4, 4)}, {"r": sample(60, 0)}) is None  # fewer than MIN_CALLS (5)
    assert judge({"w": sample(4, 4)}, {"r": sample(60, 0)}, rollout_min_calls="3") is not None


def test_the_gate_fails_an_instance_that_does_not_serve_or_restarts() -> None:
    down = route("w", InstanceState.RESTARTING)
    assert "not serving" in judge({"w": sample(0)}, {}, routes=[down])
    assert "restarted 1 times" in judge({"w": sample(0, restarts=1)}, {}, routes=[route("w", restarts=1)])
    assert judge({"w": sample(0)}, {}, routes=[route("w", InstanceState.UNHEALTHY)]) is None  # still serving


# ---- the database ------------------------------------------------------------------------------------


def test_one_active_rollout_per_service(tmp_path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def add(service: str) -> Rollout | None:
        with store.session(engine) as db:
            return store.add_rollout(db, Rollout(service=service, from_version="a", to_version="b", waves=[100]))

    first = add("svc")
    assert first is not None and add("svc") is None and add("other") is not None
    with store.session(engine) as db:
        assert {r.service for r in store.active_rollouts(db)} == {"svc", "other"}
        assert not store.update_rollout(db, rollout_id=first.id, expect=frozenset({"paused"}), state="done")
        store.release_rollout(db, service="svc")
    assert add("svc") is not None


def test_an_older_database_gains_the_version_columns(tmp_path) -> None:
    path = tmp_path / "old.sqlite"
    store.make_engine(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as db:  # the instance table as a bridge before versions made it, with a row
        db.execute("ALTER TABLE instance DROP COLUMN version")
        db.execute("ALTER TABLE instance DROP COLUMN version_id")
        db.execute("INSERT INTO client (id, workspace, profile, token_hash, created_at) VALUES "
                   "('c', '/w', 'quick', 'h', '2026-01-01 00:00:00')")  # fmt: skip
        db.execute("INSERT INTO instance (client_id, service, port, state, restarts, backend_state, last_log, notes) "
                   "VALUES ('c', 'svc', 8200, 'running', 0, '{}', '[]', '[]')")  # fmt: skip
    engine = store.make_engine(f"sqlite:///{path}")
    with store.session(engine) as db:
        store.update_instance(db, client_id="c", service="svc", version="v2", version_id="cmd-1")
    with store.session(engine) as db:
        row = store.get_instance(db, client_id="c", service="svc")
        assert (row.version, row.version_id) == ("v2", "cmd-1")
