"""The quality side of Serena-aware impact, without Serena: which peer the bridge last named (captured by the
key guard), how Serena's symbol trees and name paths are read, and how narrowing reshapes the impacted tests."""

from __future__ import annotations

import json

import pytest

from instances.keyguard import PEERS, InstanceKeyGuard, Peers
from instances.quality.impact.importgraph import ImportGraph
from instances.quality.impact.serena_impact import FileResult, callables_in, narrow_impacted, pytest_node_id

KEY = "k" * 32


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(f"x-paradise-peer-{k.replace('_', '-')}".encode(), v.encode()) for k, v in values.items()]


def test_the_latest_proxied_request_decides_and_a_probe_changes_nothing() -> None:
    peers = Peers()
    peers.capture(headers(names="serena", serena_url="http://127.0.0.1:8200/mcp", serena_key="s" * 43))
    assert peers.get("serena") == ("http://127.0.0.1:8200/mcp", "s" * 43)
    peers.capture([(b"x-paradise-instance-key", KEY.encode())])  # a health probe: no peer headers at all
    assert peers.get("serena") is not None
    peers.capture(headers(names="serena"))  # proxied, but Serena is not running now
    assert peers.get("serena") is None
    peers.capture(headers(names="serena", serena_url="http://x/mcp"))  # an address without a key is no peer
    assert peers.get("serena") is None
    assert "s" * 43 not in repr(peers)


async def test_only_a_request_with_the_instance_key_can_set_the_peers() -> None:
    PEERS.clear()

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    guarded = InstanceKeyGuard(app, KEY)
    peer = headers(names="serena", serena_url="http://127.0.0.1:9/mcp", serena_key="e" * 43)
    await guarded({"type": "http", "headers": peer}, None, send)  # no key: refused, nothing captured
    await guarded({"type": "http", "headers": [*peer, (b"x-paradise-instance-key", b"w" * 32)]}, None, send)
    assert [m["status"] for m in sent if "status" in m] == [401, 403] and PEERS.get("serena") is None
    await guarded({"type": "http", "headers": [*peer, (b"x-paradise-instance-key", KEY.encode())]}, None, send)
    assert PEERS.get("serena") == ("http://127.0.0.1:9/mcp", "e" * 43)
    PEERS.clear()


def test_serena_symbol_trees_become_callables_with_their_lines() -> None:
    tree = json.loads(
        '[{"name_path": "add", "kind": "Function", "body_location": {"start_line": 0, "end_line": 1},'
        ' "children": {"Variable": [{"name": "a", "body_location": {"start_line": 0, "end_line": 0}}]}},'
        ' {"name_path": "LIMIT", "kind": "Variable", "body_location": {"start_line": 3, "end_line": 3}},'
        ' {"name_path": "Box", "kind": "Class", "body_location": {"start_line": 5, "end_line": 9},'
        '  "children": {"Method": [{"name": "volume", "body_location": {"start_line": 7, "end_line": 9}}]}}]'
    )
    assert callables_in(tree) == [("add", "Function", 0, 1), ("Box/volume", "Method", 7, 9)]


@pytest.mark.parametrize(
    ("name_path", "node"),
    [
        ("test_mul", "tests/t.py::test_mul"),
        ("TestBox/test_volume", "tests/t.py::TestBox::test_volume"),
        ("test_mul/inner", "tests/t.py::test_mul"),  # a closure inside a test is that test
        ("make_box", None),  # a helper or fixture: not a test function
        ("Helper/test_x", None),  # pytest collects classes named Test* only
    ],
)
def test_referencing_symbols_in_test_files_map_to_pytest_node_ids(name_path: str, node: str | None) -> None:
    assert pytest_node_id("tests/t.py", name_path) == node


def test_narrowing_keeps_files_reached_otherwise_and_drops_files_no_test_function_reaches() -> None:
    graph = ImportGraph.build(
        {
            "calc/__init__.py": "",
            "calc/ops.py": "def mul(a, b):\n    return a * b\n",
            "calc/io.py": "X = 1\n",
            "tests/test_ops.py": "from calc.ops import mul\n",
            "tests/test_other.py": "from calc.ops import mul\n",
            "tests/test_io.py": "from calc.io import X\nfrom calc.ops import mul\n",
        }
    )
    changed = {"calc/ops.py", "calc/io.py"}
    impacted = graph.impacted_tests(changed)
    entries = [{"path": t, "runner": "pytest", "reason": "imports", "chain": c} for t, c in impacted.items()]
    ops = FileResult(nodes={"tests/test_ops.py::test_mul": ["calc.ops.mul", "tests/test_ops.py::test_mul"],
                            "tests/test_io.py::test_both": ["calc.ops.mul", "tests/test_io.py::test_both"]})
    out = {e["path"]: e for e in narrow_impacted(entries, {"_narrowed": {"calc/ops.py": ops}}, graph, changed)}
    assert set(out) == {"tests/test_ops.py", "tests/test_io.py"}  # test_other reaches no mul: not impacted
    assert out["tests/test_ops.py"]["scope"] == "functions"
    assert out["tests/test_ops.py"]["functions"] == ["tests/test_ops.py::test_mul"]
    assert "calc.ops.mul -> tests/test_ops.py::test_mul" in out["tests/test_ops.py"]["reason"]
    # calc/io.py was not narrowed (say Serena fell back for it): its importer runs whole.
    assert out["tests/test_io.py"]["scope"] == "file"
    assert narrow_impacted(entries, {"used": False}, graph, changed) == entries  # no Serena: as before
