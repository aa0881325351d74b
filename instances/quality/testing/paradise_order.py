"""The pytest plugin the quality instance copies into every run it plans (loaded with
`-p paradise_order`, its data in PARADISE_ORDER_FILE).  It runs the tests that failed last time
first, then the slowest; it keeps only this process's share when the plan splits a run by file
(PARADISE_SHARD="index/count"); and it notes which tests this process (or xdist worker) ran.

Sharing out by file happens twice, and every process reaches the same answer on its own: the files
earlier runs timed are shared before collection (a process does not even import another's test
modules: collection is split too), and files never timed are collected by every process and
shared after it, onto the loads the timed files left.

It runs inside the workspace's interpreter, not the server's: plain pytest hooks, nothing imported
from the quality package, syntax any supported Python reads."""

from __future__ import annotations

import json
import os

import pytest

PER_TEST_S = 0.002
"""pytest's own cost per test (setup, report, junit), so a file of many fast or never-timed tests
does not count as free when files are shared out."""

_DATA: dict | None = None
_SEEN: list = []
_FILES: set = set()


def _data() -> dict:
    global _DATA
    if _DATA is None:
        with open(os.environ["PARADISE_ORDER_FILE"], encoding="utf-8") as handle:
            _DATA = json.load(handle)
    return _DATA


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def assign_files(costs: dict, shards: int, loads: list | None = None) -> dict:
    """{file: shard}: the costliest file first, each to the shard with the least time so far
    (longest-processing-time first), starting from `loads` if given.  Ties go by name and index, so
    every process of a run reaches the same answer from the same data without talking to the others."""
    loads = loads if loads is not None else [0.0] * shards
    owner = {}
    for path in sorted(costs, key=lambda p: (-costs[p], p)):
        target = min(range(shards), key=lambda i: (loads[i], i))
        owner[path] = target
        loads[target] += costs[path]
    return owner


def _shard() -> tuple[int, int] | None:
    value = os.environ.get("PARADISE_SHARD")
    if not value:
        return None
    index, count = value.split("/")
    return int(index), int(count)


def file_costs(seconds: dict, default: float) -> dict:
    """{file: recorded seconds of its tests + pytest's own cost per test}."""
    costs: dict = {}
    for nodeid, spent in seconds.items():
        path = file_of(nodeid)
        costs[path] = costs.get(path, 0.0) + (spent if spent is not None else default) + PER_TEST_S
    return costs


_TIMED: tuple[dict, list] | None = None


def _timed_share(count: int) -> tuple[dict, list]:
    """({timed file: shard}, the time each shard got) from the recorded times alone."""
    global _TIMED
    if _TIMED is None:
        data = _data()
        costs = file_costs(data["seconds"], data["default_s"])
        owner = assign_files(costs, count)
        loads = [0.0] * count
        for path, shard in owner.items():
            loads[shard] += costs[path]
        _TIMED = (owner, loads)
    return _TIMED


if int(pytest.__version__.split(".")[0]) >= 7:  # `collection_path` (older pytest: shared after collection only)

    def pytest_ignore_collect(collection_path, config):
        shard = _shard()
        if shard is None or collection_path.suffix != ".py":
            return None
        try:
            rel = collection_path.relative_to(config.rootpath).as_posix()
        except ValueError:
            return None
        owner, _ = _timed_share(shard[1])
        if owner.get(rel, shard[0]) != shard[0]:
            return True  # another process's file: not even imported here
        return None


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: share out only what will run
def pytest_collection_modifyitems(session, config, items):
    data = _data()
    first = set(data["first"])
    seconds = data["seconds"]
    default = data["default_s"]
    shard = _shard()
    if shard is not None:
        index, count = shard
        timed, loads = _timed_share(count)
        costs: dict = {}
        for item in items:
            path = file_of(item.nodeid)
            if path not in timed:  # collected by every process: shared now, onto the timed files' loads
                costs[path] = costs.get(path, 0.0) + seconds.get(item.nodeid, default) + PER_TEST_S
        owner = {**assign_files(costs, count, list(loads)), **timed}
        dropped = [item for item in items if owner.get(file_of(item.nodeid), index) != index]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if owner.get(file_of(item.nodeid), index) == index]

    def key(pair):
        position, item = pair
        return (0 if item.nodeid in first else 1, -seconds.get(item.nodeid, default), position)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
    _FILES.update(file_of(item.nodeid) for item in items)


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _SEEN.append([report.nodeid, round(report.duration, 4)])


def pytest_sessionfinish(session):
    if session.config.pluginmanager.hasplugin("dsession"):
        return  # the xdist controller: its workers write their own lists
    shard = _shard()
    worker = os.environ.get("PYTEST_XDIST_WORKER") or (f"shard{shard[0]}" if shard else "main")
    path = os.path.join(_data()["out_dir"], "worker-" + worker + ".json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"worker": worker, "tests": _SEEN, "files": len(_FILES)}, handle)
