"""Diff parsing, mapping changed lines to definitions, and the full-suite fallback rules."""

from __future__ import annotations

from instances.quality.impact.gitdiff import (
    FileChange,
    changed_definitions,
    definitions,
    parse_name_status,
    parse_unified_diff,
)
from instances.quality.impact.impact import fallback_reasons
from instances.quality.impact.importgraph import ImportGraph
from instances.quality.impact.selection import map_data_files

# Real `git diff --no-color --no-renames -U0 HEAD` output: a deleted file, three hunks, an added file.
PATCH = """\
diff --git a/gone.py b/gone.py
deleted file mode 100644
index 9b8c7b5..0000000
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-OLD = 1
diff --git a/mod.py b/mod.py
index 535e8b9..12ab34a 100644
--- a/mod.py
+++ b/mod.py
@@ -2 +2 @@ def a():
-    return 1
+    return 2
@@ -7 +6,0 @@ def b():
-    y = 2
@@ -13,0 +13,3 @@ class C:
+
+    def n(self):
+        return 4
diff --git a/new.py b/new.py
new file mode 100644
index 0000000..8718bc6
--- /dev/null
+++ b/new.py
@@ -0,0 +1 @@
+NEW = 1
"""
OLD_MOD = (
    "def a():\n    return 1\n\n\ndef b():\n    x = 1\n    y = 2\n    return x + y\n\n\nclass C:\n"
    "    def m(self):\n        return 3\n"
)
NEW_MOD = (
    "def a():\n    return 2\n\n\ndef b():\n    x = 1\n    return x + y\n\n\nclass C:\n"
    "    def m(self):\n        return 3\n\n    def n(self):\n        return 4\n"
)


def test_name_status() -> None:
    assert parse_name_status("D\0gone.py\0M\0mod.py\0A\0new.py\0") == {
        "gone.py": "deleted",
        "mod.py": "modified",
        "new.py": "added",
    }


def test_unified_diff_lines_on_both_sides() -> None:
    changes = parse_unified_diff(PATCH)
    assert set(changes) == {"gone.py", "mod.py", "new.py"}
    mod = changes["mod.py"]
    assert mod.status == "modified"
    assert mod.new_lines == {2, 6, 13, 14, 15}  # 6: where line 7 was deleted
    assert mod.old_lines == {2, 7}
    assert (mod.added, mod.removed) == (4, 2)
    assert changes["gone.py"].status == "deleted" and changes["gone.py"].new_lines == set()
    assert changes["new.py"].status == "added" and changes["new.py"].new_lines == {1}


def test_definitions_have_qualified_names_and_spans() -> None:
    defs = {d.qualname: (d.kind, d.start, d.end, d.body_start) for d in definitions(NEW_MOD)}
    assert defs == {
        "a": ("function", 1, 2, 2),
        "b": ("function", 5, 7, 6),
        "C": ("class", 10, 15, 11),
        "C.m": ("function", 11, 12, 12),
        "C.n": ("function", 14, 15, 15),
    }
    decorated = definitions("import functools\n\n@functools.cache\ndef f():\n    return 1\n")
    assert (decorated[0].start, decorated[0].end) == (3, 5)


def test_changed_definitions_added_modified_removed() -> None:
    change = parse_unified_diff(PATCH)["mod.py"]
    result = [(d["name"], d["change"]) for d in changed_definitions(change, NEW_MOD, OLD_MOD)]
    assert result == [("a", "modified"), ("b", "modified"), ("C", "modified"), ("C.n", "added")]
    gone = FileChange("old.py", "deleted", set(), {4, 5}, 0, 2)
    removed = changed_definitions(gone, None, "X = 1\n\n\ndef dropped():\n    return X\n")
    assert [(d["name"], d["change"], d["start_line"]) for d in removed] == [("dropped", "removed", None)]
    module_level = changed_definitions(FileChange("m.py", "modified", {1}, {1}), "X = 2\n", "X = 1\n")
    assert [(d["name"], d["kind"]) for d in module_level] == [("<module>", "module")]


def _changes(*paths: str) -> dict[str, FileChange]:
    return {p: FileChange(p, "modified") for p in paths}


def test_fallback_reasons_for_config_conftest_dynamic_and_data_files() -> None:
    graph = ImportGraph.build(
        {
            "app/plug.py": "import importlib\ndef f(n):\n    return importlib.import_module(n)\n",
            "app/plain.py": "X = 1\n",
        }
    )
    assert fallback_reasons(_changes("app/plain.py", "README.md", "docs/x.yaml", "web/app.ts"), graph) == []
    assert fallback_reasons(_changes("app/plug.py"), graph) == [
        "app/plug.py imports dynamically (import_module of a computed name at line 3): the import graph cannot "
        "tell which tests load what it loads"
    ]
    assert fallback_reasons(_changes("tests/conftest.py"), graph) == [
        "tests/conftest.py changed: its fixtures and hooks can affect any test"
    ]
    for config in ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "requirements-dev.txt"):
        assert fallback_reasons(_changes(config), graph) == [
            f"{config} changed: configuration or dependencies can affect every test"
        ]
    # data files are decided by selection.map_data_files (the tests that name them, else the full suite)
    assert fallback_reasons(_changes("app/data/prices.json"), graph) == []
    mapped = map_data_files(_changes("app/data/prices.json"), graph, {"app/plain.py": "X = 1\n"}, skip=set())
    assert mapped["full_suite_reasons"] == [
        "app/data/prices.json changed and no Python file names it (a data file or unknown kind of file): "
        "the import graph cannot tell which tests read it"
    ]
