"""A workspace of real shape for "quality answers an agent can trust" (issue 28): a vitest package whose
`test` script is `vitest run --typecheck` (with a tsconfig and a type test), a jest package, and a pytest
suite, with test names like those of unjs/ufo's suite: `//` inside a name, `+`, `(`, `..`.  Each runner
has failures whose ids an agent will pass back."""

from __future__ import annotations

import json

from quality_workspaces import write

GOOGLE = 'joinURL("https://google.com/", "a")'
PLUS = 'withBase "/foo" + "/bar"'
UP = "resolves ../up (x)"
MANY = 20
"""Failing vitest cases beyond the named ones: more failures than one page of a reply shows."""

VITEST_IDS = [f"web/src/url.test.ts::joinURL {GOOGLE}", f"web/src/url.test.ts::joinURL {PLUS}"]
JEST_IDS = [f"legacy/__tests__/url.test.js::joinURL {GOOGLE}", f"legacy/__tests__/second.test.js::{PLUS}"]
PYTEST_IDS = ["tests/test_urls.py::test_join[https://google.com/]", "tests/test_urls.py::test_join[../up]"]
TYPE_TEST = "joinURL returns a number (it does not)"
# vitest puts the file into a type test's name: its id is the runner's, as for any other test
TYPE_ID = f"web/src/url.test-d.ts::src/url.test-d.ts {TYPE_TEST}"
MANY_IDS = [f"web/src/url.test.ts::many case {i} + more" for i in range(MANY)]

TRUTH = {
    "web/package.json": json.dumps(
        {
            "name": "url",
            "type": "module",
            "private": True,
            "scripts": {"test": "vitest run --typecheck"},
            "devDependencies": {"vitest": "5", "typescript": "5"},
        }
    ),
    "web/tsconfig.json": json.dumps(
        {
            "compilerOptions": {
                "strict": True,
                "noEmit": True,
                "target": "ES2022",
                "module": "ESNext",
                "moduleResolution": "Bundler",
                "skipLibCheck": True,
                "types": [],
            },
            "include": ["src"],
        }
    ),
    "web/src/url.ts": """
        export function joinURL(base: string, path: string): string {
          return base.replace(/\\/$/, "") + "/" + path;
        }
        """,
    "web/src/url.test.ts": f"""
        import {{ describe, test, expect }} from "vitest";
        import {{ joinURL }} from "./url";

        describe("joinURL", () => {{
          test({json.dumps(GOOGLE)}, () => {{
            expect(joinURL("https://google.com/", "a")).toBe("https://google.com//a");
          }});
          test({json.dumps(PLUS)}, () => {{
            expect(joinURL("/foo", "/bar")).toBe("/foo/bar");
          }});
          test({json.dumps(UP)}, () => {{
            expect(joinURL("a", "../up")).toBe("a/../up");
          }});
          test("plain", () => {{
            expect(joinURL("a", "b")).toBe("a/b");
          }});
        }});

        describe("many", () => {{
          for (let i = 0; i < {MANY}; i++) {{
            test(`case ${{i}} + more`, () => {{
              expect(i).toBe(-1);
            }});
          }}
        }});
        """,
    # Runs only under `vitest --typecheck` (the package's test script): vitest's default typecheck include.
    "web/src/url.test-d.ts": f"""
        import {{ expectTypeOf, test }} from "vitest";
        import {{ joinURL }} from "./url";

        test({json.dumps(TYPE_TEST)}, () => {{
          expectTypeOf(joinURL("a", "b")).toEqualTypeOf<number>();
        }});
        """,
    "legacy/package.json": json.dumps({"name": "legacy", "private": True, "devDependencies": {"jest": "30"}}),
    "legacy/__tests__/url.test.js": f"""
        describe("joinURL", () => {{
          test({json.dumps(GOOGLE)}, () => {{
            expect("https://google.com//a").toBe("https://google.com/a");
          }});
          test({json.dumps(UP)}, () => {{
            expect(1).toBe(1);
          }});
        }});
        """,
    "legacy/__tests__/second.test.js": f"""
        test({json.dumps(PLUS)}, () => {{
          expect("/foo//bar").toBe("/foo/bar");
        }});
        """,
    "tests/test_urls.py": """
        import pytest


        @pytest.mark.parametrize("url", ["https://google.com/", "a+b", "f(x)", "../up"])
        def test_join(url):
            assert "//" not in url and ".." not in url


        def test_plain():
            assert True
        """,
}


def build_truth(root):
    """The workspace; `web` gets vitest's package in node_modules (a link to the bundled toolchain's), as
    a project has after `npm install`, so that tsc (alone or under `vitest --typecheck`) finds its types."""
    from instances.quality.core.js_packages import BUNDLED_NODE_DIR

    write(root, TRUTH)
    (root / "web" / "node_modules").mkdir()
    (root / "web" / "node_modules" / "vitest").symlink_to(BUNDLED_NODE_DIR / "node_modules" / "vitest")
    return root
