"""Serena-aware impact for TypeScript (issue 24 item 5) through a real bridge (process runtime): the quality
instance asks the client's own Serena (real, with typescript-language-server from the language packs) which
vitest tests reach a changed function, and runs only those (by name); a module-level change keeps the import
graph's selection, with the reason."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quality_workspaces import commit_all, init_repo, write

from tests.helpers import BridgeProcess, bridge_with_serena, kill_leftovers, mcp_client

pytestmark = [pytest.mark.serena, pytest.mark.slow]
CLIENT = "ts-impact"
SHOP = {
    "package.json": json.dumps(
        {
            "name": "shop",
            "private": True,
            "type": "module",
            "scripts": {"test": "vitest run"},
            "devDependencies": {"vitest": "3"},
        }
    ),
    "tsconfig.json": json.dumps(
        {"compilerOptions": {"target": "ES2022", "module": "ESNext", "moduleResolution": "Bundler", "strict": True}}
    ),
    "src/pricing.ts": """
        export function price(cents: number): number {
          return cents / 100;
        }

        export function tax(amount: number): number {
          return amount * 0.2;
        }
        """,
    "src/cart.ts": """
        import { price } from "./pricing";

        export class Cart {
          items: number[] = [];
          total(): number {
            return this.items.reduce((sum, item) => sum + price(item), 0);
          }
        }
        """,
    "test/pricing.test.ts": """
        import { expect, test } from "vitest";
        import { price } from "../src/pricing";

        test("price", () => {
          expect(price(150)).toBe(1.5);
        });
        """,
    "test/tax.test.ts": """
        import { describe, expect, it } from "vitest";
        import { tax } from "../src/pricing";

        describe("tax", () => {
          it("is a fifth", () => {
            expect(tax(10)).toBe(2);
          });
          it("keeps zero", () => {
            expect(0).toBe(0);
          });
        });
        """,
    "test/cart.test.ts": """
        import { expect, test } from "vitest";
        import { Cart } from "../src/cart";

        test("total", () => {
          const cart = new Cart();
          cart.items = [100];
          expect(cart.total()).toBe(1);
        });
        """,
}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BridgeProcess, Path, str]]:
    base = tmp_path_factory.mktemp("ts-serena")
    workspace = write(base / "shop", SHOP)
    init_repo(workspace)
    commit_all(workspace, "shop")
    proc = bridge_with_serena(base, ready_timeout=240)
    proc.env["PARADISE_WORKSPACE_ROOTS"] = str(base)
    proc.start()
    try:
        body = {"client_id": CLIENT, "workspace": str(workspace), "services": ["serena", "quality"]}
        created = proc.api("POST", "/clients", params={"wait": 300}, json={**body, "languages": ["typescript"]})
        assert created.status_code == 201, created.text
        states = {i["service"]: i["state"] for i in created.json()["instances"]}
        assert states == {"serena": "running", "quality": "running"}, created.text
        yield proc, workspace, created.json()["token"]
    finally:
        proc.kill(signal.SIGTERM)
        kill_leftovers(proc.data_dir)


async def call(bridge: tuple[BridgeProcess, Path, str], tool: str) -> dict[str, Any]:
    proc, _, token = bridge
    async with mcp_client(proc.mcp_url(CLIENT, "quality"), token, read_timeout=300) as client:
        result = await client.call_tool(tool, {})
    assert not result.is_error, result.content
    return result.structured_content


async def test_a_changed_function_selects_only_the_test_files_that_reach_it(bridge) -> None:
    pricing = bridge[1] / "src" / "pricing.ts"
    original = pricing.read_text()
    pricing.write_text(original.replace("amount * 0.2", "amount / 5"))
    try:
        analysis = await call(bridge, "analyze_changes")
        run = await call(bridge, "run_impacted_tests")
    finally:
        pricing.write_text(original)
    serena = analysis["serena"]["javascript"]
    assert serena["used"] is True, serena
    assert serena["symbols"] == ["src/pricing.ts:tax"]
    assert serena["chains"] == [["src/pricing.ts:tax", "test/tax.test.ts"]]
    # the import graph reaches all three (cart.ts imports pricing.ts); only tax.test.ts uses tax
    [impacted] = [t for t in analysis["impacted_tests"] if t["runner"] == "vitest"]
    assert impacted["path"] == "test/tax.test.ts" and "Serena" in impacted["reason"]
    assert (impacted["scope"], impacted["tests"]) == ("functions", ["test/tax.test.ts::tax is a fifth"])
    assert [t["path"] for t in run["selected_tests"]] == ["test/tax.test.ts"]
    # only the test that uses tax runs: "keeps zero", in the same file, does not
    assert (run["mode"], run["counts"]["total"], run["counts"]["passed"]) == ("impacted", 1, 1)
    [vitest] = run["by_runner"]
    assert vitest["names"] == ["tax is a fifth"] and "Serena" in vitest["reason"]


async def test_a_module_level_change_keeps_the_import_graphs_selection(bridge) -> None:
    pricing = bridge[1] / "src" / "pricing.ts"
    original = pricing.read_text()
    pricing.write_text(original + 'console.log("pricing loaded");\n')
    try:
        analysis = await call(bridge, "analyze_changes")
    finally:
        pricing.write_text(original)
    serena = analysis["serena"]["javascript"]
    assert serena["used"] is False and [f["path"] for f in serena["fallbacks"]] == ["src/pricing.ts"]
    assert "module- or class-level" in serena["fallbacks"][0]["reason"]
    paths = sorted(t["path"] for t in analysis["impacted_tests"] if t["runner"] == "vitest")
    assert paths == ["test/cart.test.ts", "test/pricing.test.ts", "test/tax.test.ts"]
