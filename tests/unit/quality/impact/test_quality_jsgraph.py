"""The JS/TS import graph: import scanning, resolution (relative, index, .js naming .ts, tsconfig
paths and baseUrl with extends, workspace packages' exports and main), impacted chains, and how a
changed file is classified."""

from __future__ import annotations

import json
from pathlib import Path

from instances.quality.core.js_packages import JsPackage, declared_runners, owning_package
from instances.quality.impact.js_graph import (
    JsImportGraph,
    JsResolver,
    describe_chain,
    load_aliases,
    read_jsonc,
    scan_js_imports,
    strip_comments,
)
from instances.quality.impact.js_impact import classify

SOURCE = """
import React from "react";
import { a, b as c } from './a';
import * as ns from "../lib/ns.js";
import type { T } from "./types";
import "./side-effect.css";
export { x } from "./x";
export * from './all';
const fs = require("fs");
const local = require('./local');
// import "./commented-out";
/* require("./also-commented") */
const url = "http://example.com/import('nope')";
const lazy = await import("./lazy");
const computed = await import(`./plugins/${name}`);
const other = require(path);
jest.mock("./mocked");
const multi = {
  a,
} ; import {
  one,
  two,
} from "./multi";
"""


def test_scan_finds_every_import_form_and_the_computed_ones() -> None:
    imports, dynamic = scan_js_imports(SOURCE)
    specs = [spec for spec, _ in imports]
    assert specs == [
        "react",
        "./a",
        "../lib/ns.js",
        "./types",
        "./side-effect.css",
        "./x",
        "./all",
        "fs",
        "./local",
        "./lazy",
        "./mocked",
        "./multi",
    ]
    assert dict(imports)["./lazy"] == 14
    assert [(d["line"], d["call"]) for d in dynamic] == [(15, "import()"), (16, "require()")]


def test_strip_comments_keeps_strings_and_line_numbers() -> None:
    text = 'a // x\nb = "// not a comment"; /* one\ntwo */ c'
    stripped = strip_comments(text)
    assert stripped.count("\n") == text.count("\n")
    assert '"// not a comment"' in stripped and "one" not in stripped and stripped.endswith(" c")
    assert read_jsonc('{\n  // c\n  "a": [1, 2,],\n}') == {"a": [1, 2]}


def _package(rel: str, manifest: dict) -> JsPackage:
    return JsPackage(rel, Path("/ws") / rel, manifest)


FILES = {
    "src/app.ts",
    "src/util/index.ts",
    "src/esm.mts",
    "src/data.json",
    "lib/tax.ts",
    "packages/fmt/package.json",
    "packages/fmt/src/index.ts",
    "packages/fmt/src/money.ts",
    "packages/fmt/src/extra/pad.ts",
    "packages/old/package.json",
    "packages/old/main.js",
    "web/tsconfig.json",
    "web/src/page.tsx",
    "web/src/components/Button.tsx",
}
PACKAGES = [
    _package(
        "packages/fmt",
        {
            "name": "@ws/fmt",
            "exports": {
                ".": {"types": "./src/index.ts", "import": "./dist/index.js"},
                "./extra/*": "./src/extra/*.ts",
            },
        },
    ),
    _package("packages/old", {"name": "old-style", "main": "main.js"}),
]


def _resolver() -> JsResolver:
    configs = {
        "tsconfig.base.json": json.dumps({"compilerOptions": {"baseUrl": ".", "paths": {"@lib/*": ["lib/*"]}}}),
        # paths resolve against the baseUrl inherited from the base config (the workspace root)
        "web/tsconfig.json": '{"extends": "../tsconfig.base", "compilerOptions": {"paths": {"~/*": ["web/src/*"]}}}',
    }
    aliases = [load_aliases("web/tsconfig.json", configs.get), load_aliases("tsconfig.base.json", configs.get)]
    return JsResolver(FILES, PACKAGES, aliases)


def test_resolution_follows_node_and_typescript_rules() -> None:
    resolver = _resolver()
    assert resolver.resolve("src/app.ts", "./util") == "src/util/index.ts"
    assert resolver.resolve("src/app.ts", "./esm.mjs") == "src/esm.mts"
    assert resolver.resolve("src/util/index.ts", "../app.js") == "src/app.ts"
    assert resolver.resolve("src/app.ts", "./data.json") == "src/data.json"
    assert resolver.resolve("src/app.ts", "@lib/tax") == "lib/tax.ts"
    assert resolver.resolve("src/app.ts", "@ws/fmt") == "packages/fmt/src/index.ts"
    assert resolver.resolve("src/app.ts", "@ws/fmt/extra/pad") == "packages/fmt/src/extra/pad.ts"
    assert resolver.resolve("src/app.ts", "@ws/fmt/private") is None  # not exported
    assert resolver.resolve("src/app.ts", "old-style") == "packages/old/main.js"
    assert resolver.resolve("src/app.ts", "react") is None and resolver.resolve("src/app.ts", "node:fs") is None
    assert resolver.resolve("src/app.ts", "../../outside") is None


def test_tsconfig_paths_apply_to_the_files_under_that_tsconfig() -> None:
    resolver = _resolver()
    assert resolver.resolve("web/src/page.tsx", "~/components/Button") == "web/src/components/Button.tsx"
    # the child's `paths` replace the parent's, but the inherited baseUrl still resolves bare names
    assert resolver.resolve("web/src/page.tsx", "lib/tax") == "lib/tax.ts"
    assert resolver.resolve("web/src/page.tsx", "@lib/tax") is None
    assert resolver.resolve("src/app.ts", "~/components/Button") is None


def test_impacted_tests_come_with_the_shortest_chain() -> None:
    sources = {
        "src/a.ts": 'import { b } from "./b";',
        "src/b.ts": 'import { c } from "./c";',
        "src/c.ts": "export const c = 1;",
        "test/a.test.ts": 'import "../src/a";',
        "test/c.test.ts": 'import "../src/c";',
        "test/other.test.ts": "",
    }
    graph = JsImportGraph(sources, JsResolver(set(sources), [], []))
    tests = {"test/a.test.ts", "test/c.test.ts", "test/other.test.ts"}
    impacted = graph.impacted({"src/c.ts"}, tests)
    assert impacted == {
        "test/a.test.ts": ["test/a.test.ts", "src/a.ts", "src/b.ts", "src/c.ts"],
        "test/c.test.ts": ["test/c.test.ts", "src/c.ts"],
    }
    assert describe_chain(impacted["test/a.test.ts"], {"src/c.ts"}) == (
        "imports (transitively) src/a.ts -> src/b.ts -> src/c.ts"
    )
    assert graph.impacted({"test/other.test.ts"}, tests) == {"test/other.test.ts": ["test/other.test.ts"]}
    assert graph.summary()["edge_count"] == 4


def test_classify_changed_files() -> None:
    nodes, imported = {"src/a.ts"}, {"src/data.json"}
    assert classify("src/a.ts", nodes, imported) == "module"
    assert classify("src/data.json", nodes, imported) == "module"
    assert classify("fixtures/big.csv", nodes, imported) == "unmapped"
    assert classify("assets/logo.webp", nodes, imported) == "unmapped"
    for config in ("package-lock.json", "yarn.lock", "tsconfig.build.json", "vitest.config.ts", "package.json"):
        assert classify(f"web/{config}", nodes, imported) == "config"
    assert classify("README.md", nodes, imported) == "ignored"
    assert classify("app/models.py", nodes, imported) == "python"


def test_runner_detection_and_package_ownership(tmp_path: Path) -> None:
    assert declared_runners({"devDependencies": {"jest": "30"}}, tmp_path) == ["jest"]
    assert declared_runners({"scripts": {"test": "vitest run"}}, tmp_path) == ["vitest"]
    assert declared_runners({"jest": {"testMatch": ["**/*.spec.js"]}}, tmp_path) == ["jest"]
    (tmp_path / "vitest.config.ts").write_text("export default {}")
    assert declared_runners({}, tmp_path) == ["vitest"]
    root, web = _package("", {}), _package("packages/web", {})
    assert owning_package([root, web], "packages/web/src/a.ts") is web
    assert owning_package([root, web], "packages/webby/a.ts") is root
