"""Sample JavaScript/TypeScript workspaces for the quality instance's tests (real files, real git
repositories; no node_modules: the bundled toolchain runs them, as in the quality image)."""

from __future__ import annotations

import json
import os
import socket

import pytest
from quality_workspaces import make_git_workspace, write
from web_workspace import webapp

# ----- jest, CommonJS: 3 tests (1 fails), coverage of two modules --------------------------------------
JEST = {
    "package.json": json.dumps(
        {"name": "shop", "private": True, "scripts": {"test": "jest"}, "devDependencies": {"jest": "30"}}
    ),
    "src/pricing.js": """
        function discount(price, percent) {
          if (percent < 0) {
            throw new Error("negative");
          }
          return (price * (100 - percent)) / 100;
        }

        function unused(x) {
          return x * 2;
        }

        module.exports = { discount, unused };
        """,
    "src/cart.js": """
        const { discount } = require("./pricing");

        function total(prices, percent) {
          return discount(
            prices.reduce((a, b) => a + b, 0),
            percent,
          );
        }

        module.exports = { total };
        """,
    "__tests__/cart.test.js": """
        const { total } = require("../src/cart");

        describe("cart", () => {
          test("adds prices", () => {
            expect(total([1, 2], 0)).toBe(3);
          });
          test("applies the discount", () => {
            expect(total([10], 10)).toBe(8);
          });
        });
        """,
    "__tests__/pricing.test.js": """
        const { discount } = require("../src/pricing");

        test("no discount", () => {
          expect(discount(100, 0)).toBe(100);
        });
        """,
}

# ----- vitest, ES modules + TypeScript: 2 pass, 1 fails, 1 skipped ------------------------------------
VITEST = {
    "package.json": json.dumps({"name": "calc", "type": "module", "private": True, "devDependencies": {"vitest": "5"}}),
    "src/math.ts": """
        export function add(a: number, b: number): number {
          return a + b;
        }

        export function clamp(value: number, low: number, high: number): number {
          if (value < low) {
            return low;
          }
          return value > high ? high : value;
        }
        """,
    "src/math.test.ts": """
        import { describe, expect, test } from "vitest";
        import { add, clamp } from "./math.js";

        describe("math", () => {
          test("adds", () => {
            expect(add(2, 3)).toBe(5);
          });
          test("clamps low", () => {
            expect(clamp(-1, 0, 10)).toBe(0);
          });
          test("clamps high", () => {
            expect(clamp(11, 0, 10)).toBe(11);
          });
          test.skip("later", () => {});
        });
        """,
}

# ----- mixed monorepo: pytest at the root, jest in packages/api, vitest in packages/web ----------------
MIXED = {
    "tools/__init__.py": "",
    "tools/slug.py": """
        def slug(text):
            return "-".join(text.lower().split())
        """,
    "tests/test_slug.py": """
        from tools.slug import slug


        def test_slug():
            assert slug("Hello World") == "hello-world"
        """,
    "package.json": json.dumps({"name": "mixed", "private": True, "workspaces": ["packages/*"]}),
    "packages/api/package.json": json.dumps({"name": "@mixed/api", "devDependencies": {"jest": "30"}}),
    "packages/api/src/route.js": """
        function route(path) {
          return path === "/" ? "home" : "other";
        }
        module.exports = { route };
        """,
    "packages/api/src/route.test.js": """
        const { route } = require("./route");
        test("home", () => {
          expect(route("/")).toBe("home");
        });
        """,
    "packages/web/package.json": json.dumps(
        {"name": "@mixed/web", "type": "module", "devDependencies": {"vitest": "5"}}
    ),
    "packages/web/src/title.js": """
        export const title = (name) => `${name} | Mixed`;
        """,
    "packages/web/src/title.test.js": """
        import { expect, test } from "vitest";
        import { title } from "./title.js";
        test("title", () => {
          expect(title("Home")).toBe("Home | Mixed");
        });
        test("title fails", () => {
          expect(title("Home")).toBe("Home");
        });
        """,
}

# ----- lint: eslint (default flat config) + prettier findings, and a workspace with its own config ---
LINT = {
    "package.json": json.dumps({"name": "lintme", "private": True}),
    "src/app.js": """
        const unused = 1;
        function greet(name) {
          return "hi " + nam;
        }
        module.exports = { greet };
        """,
    "src/typed.ts": """
        export function size(value: any): number {
          let length = value.length;
          return length
        }
        """,
    "src/clean.js": """
        export const ok = (x) => x + 1;
        """,
}
LINT_OWN_CONFIG = {
    "package.json": json.dumps({"name": "ownconfig", "private": True, "type": "module"}),
    "eslint.config.js": """
        export default [{ files: ["**/*.js"], rules: { "no-console": "error" } }];
        """,
    "index.js": """
        console.log("hello");
        """,
}


def require_node_toolchain() -> None:
    """The JS tools come from the bundled toolchain (`npm ci --prefix instances/quality/node`, or the
    image's): missing, the JS tests skip on a developer's machine and fail in CI."""
    from instances.quality.core.js_packages import node_tool

    missing = [
        t
        for t in ("node", "jest", "vitest", "eslint", "prettier", "playwright", "newman", "lighthouse")
        if node_tool(t) is None
    ]
    if missing:
        message = f"JavaScript toolchain missing ({', '.join(missing)}): run npm ci --prefix instances/quality/node"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


# ----- TypeScript change impact: tsconfig paths, a workspace package's exports, index files, .js -> .ts ----
TS_IMPACT = {
    "package.json": json.dumps(
        {"name": "tsshop", "type": "module", "private": True, "devDependencies": {"vitest": "5"}}
    ),
    # vitest needs the same aliases at run time (no node_modules here, so no workspace links either)
    "vitest.config.mjs": """
        import path from "node:path";

        const here = import.meta.dirname;
        export default {
          resolve: {
            alias: {
              "@lib": path.join(here, "lib"),
              "@shop/format": path.join(here, "packages/format/src/index.ts"),
            },
          },
        };
        """,
    "tsconfig.json": """
        {
          // TypeScript allows comments and trailing commas here
          "compilerOptions": {
            "baseUrl": ".",
            "paths": { "@lib/*": ["lib/*"] },
          },
        }
        """,
    "packages/format/package.json": json.dumps(
        {"name": "@shop/format", "exports": {".": {"types": "./src/index.ts", "import": "./dist/index.js"}}}
    ),
    "packages/format/src/index.ts": 'export * from "./money";\n',
    "packages/format/src/money.ts": """
        export const money = (cents: number): string => `${(cents / 100).toFixed(2)} EUR`;
        """,
    "lib/tax.ts": "export function withTax(net: number): number {\n  return Math.round(net * 1.2);\n}\n",
    "src/cart.ts": """
        import { withTax } from "@lib/tax";
        import { money } from "@shop/format";

        export function label(net: number): string {
          return money(withTax(net));
        }
        """,
    "src/util/index.ts": "export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);\n",
    "src/stats.ts": """
        import { sum } from "./util";

        export const mean = (xs: number[]): number => sum(xs) / xs.length;
        """,
    "src/loader.js": "export function load(name) {\n  return import(name);\n}\n",
    "data/rates.json": '{"vat": 20}\n',
    "tests/cart.test.ts": """
        import { expect, test } from "vitest";
        import { label } from "../src/cart.js";

        test("label", () => {
          expect(label(1000)).toBe("12.00 EUR");
        });
        """,
    "tests/stats.test.ts": """
        import { expect, test } from "vitest";
        import { mean } from "../src/stats";

        test("mean", () => {
          expect(mean([1, 2, 3])).toBe(2);
        });
        """,
    "tests/other.test.ts": """
        import { expect, test } from "vitest";

        test("other", () => {
          expect(1 + 1).toBe(2);
        });
        """,
}


# ----- a jest suite with a test that never ends (timeout: partial result, runner killed) --------------
JEST_HANG = {
    "package.json": json.dumps({"name": "hang", "private": True, "devDependencies": {"jest": "30"}}),
    "fast.test.js": 'test("fast", () => {\n  expect(1).toBe(1);\n});\n',
    "hang.test.js": 'test("hangs", () => new Promise(() => {}), 600000);\n',
}


def build_js(base) -> dict:
    return {
        "jest": write(base / "jest", JEST),
        "vitest": write(base / "vitest", VITEST),
        "mixed": write(base / "mixed", MIXED),
        "jslint": write(base / "jslint", LINT),
        "ownconfig": write(base / "ownconfig", LINT_OWN_CONFIG),
        "tsimpact": make_git_workspace(base / "tsimpact", TS_IMPACT, {}),
        "webapp": write(base / "webapp", webapp(free_port())),
        "jesthang": write(base / "jesthang", JEST_HANG),
        "mixedrepo": make_git_workspace(base / "mixedrepo", MIXED, {}),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
