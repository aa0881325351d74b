"""The pure parts of Serena-aware TS impact, on answers of the real Serena + typescript-language-server (recorded
from a run on a small vitest project): which symbols changed lines fall in, the runner's test id of a
reference inside `describe`/`it` callbacks, and what one reference means."""

from __future__ import annotations

import pytest

from instances.quality.impact.ts_serena import TsResult, TsWalk, _units, runner_test_id

PRICING = [
    {"name_path": "price", "kind": "Function", "body_location": {"start_line": 0, "end_line": 2}},
    {"name_path": "round", "kind": "Constant", "body_location": {"start_line": 8, "end_line": 10}},
    {"name_path": "tax", "kind": "Function", "body_location": {"start_line": 4, "end_line": 6}},
]
CART = [
    {
        "name_path": "Cart",
        "kind": "Class",
        "body_location": {"start_line": 2, "end_line": 7},
        "children": {
            "Property": [{"name": "items", "body_location": {"start_line": 3, "end_line": 3}}],
            "Method": [{"name": "total", "body_location": {"start_line": 4, "end_line": 6}}],
        },
    },
    {"name_path": "app.get() callback", "kind": "Function", "body_location": {"start_line": 9, "end_line": 9}},
]


def test_named_symbols_and_class_members_not_callbacks() -> None:
    assert _units(PRICING) == [("price", 0, 2, False), ("round", 8, 10, False), ("tax", 4, 6, False)]
    assert _units(CART) == [("Cart", 2, 7, True), ("Cart/items", 3, 3, False), ("Cart/total", 4, 6, False)]


@pytest.mark.parametrize(
    ("name_path", "expected"),
    [
        ("describe('tax') callback/it('is a fifth') callback", "t.test.ts::tax is a fifth"),
        ('test("joinURL(\\"a\\", \\"b\\")") callback', 't.test.ts::joinURL(\\"a\\", \\"b\\")'),
        ("helper", None),
        ("describe('tax') callback", None),  # the describe body, outside any test: the whole file
        ("describe('tax') callback/beforeEach() callback", None),
        ("test(`rounds ${x}`) callback", None),  # a template title names no single test
    ],
)
def test_the_runner_id_of_a_reference_in_a_test(name_path: str, expected: str | None) -> None:
    assert runner_test_id("t.test.ts", name_path) == expected


def _classify(path: str, kind: str, name_path: str, line: str) -> tuple[TsResult, object]:
    walk = TsWalk(None, {"test/tax.test.ts"})  # type: ignore[arg-type]  # classification asks nothing
    result = TsResult()
    entry = {"name_path": name_path, "content_around_reference": f"...   0:x\n  >   1:{line}\n...   2:"}
    return result, walk._classify(result, path, kind, entry, ["src/pricing.ts:tax"])


def test_what_one_reference_means() -> None:
    result, follow = _classify("test/tax.test.ts", "File", "tax.test", "import { tax } from '../src/pricing';")
    assert follow is None and not result.tests and result.fallback is None  # the import line itself
    result, follow = _classify("test/tax.test.ts", "Function", "describe('tax') callback/it('x') callback", "tax(1)")
    assert result.tests == {"test/tax.test.ts": ["src/pricing.ts:tax", "test/tax.test.ts"]}
    assert result.titles == {"test/tax.test.ts": {"test/tax.test.ts::tax x"}} and not result.whole
    result, _ = _classify("test/tax.test.ts", "Function", "makeOrder", "tax(1)")
    assert result.whole == {"test/tax.test.ts"}  # a helper of the test file: all of its tests
    assert _classify("src/cart.ts", "Method", "Cart/total", "price(i)")[1] == ("src/cart.ts", "Cart/total")
    assert _classify("src/cart.ts", "Function", "sum/items.reduce() callback", "tax(i)")[1] == ("src/cart.ts", "sum")
    result, _ = _classify("src/index.ts", "File", "index", "export { tax as vat } from './pricing';")
    assert "under another name" in (result.fallback or "")
    result, _ = _classify("src/server.ts", "Function", "app.get() callback", "tax(1)")
    assert "module-level code" in (result.fallback or "")
