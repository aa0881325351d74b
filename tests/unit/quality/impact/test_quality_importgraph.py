"""The static import graph and impacted-test selection."""

from __future__ import annotations

import ast

from instances.quality.impact.importgraph import ImportGraph, primary_name, resolve_relative, scan_imports


def test_primary_name_follows_packages_up_to_the_first_plain_directory() -> None:
    files = {"src/pkg/__init__.py", "src/pkg/sub/__init__.py", "src/pkg/sub/mod.py", "tests/test_a.py"}
    assert primary_name("src/pkg/sub/mod.py", files) == ("pkg.sub.mod", "src")
    assert primary_name("src/pkg/__init__.py", files) == ("pkg", "src")
    assert primary_name("tests/test_a.py", files) == ("test_a", "tests")


def test_relative_imports_resolve_against_the_package() -> None:
    assert resolve_relative("pkg.sub.mod", False, 1, "x") == "pkg.sub.x"
    assert resolve_relative("pkg.sub.mod", False, 2, None) == "pkg"
    assert resolve_relative("pkg.sub", True, 1, "y") == "pkg.sub.y"
    assert resolve_relative("pkg.mod", False, 3, "z") is None


def test_scan_imports_finds_static_and_dynamic_imports() -> None:
    source = (
        "import os.path\n"
        "from . import sibling\n"
        "from .models import Thing\n"
        "from .extra import *\n"
        "import importlib\n"
        "def f(name):\n"
        "    import json\n"
        "    importlib.import_module(name)\n"
        "    return importlib.import_module('pkg.plugins.a')\n"
        "x = __import__('pkg.other')\n"
    )
    imports, dynamic = scan_imports(ast.parse(source), "pkg.mod", False)
    assert sorted(imports) == [
        ("importlib", 5),
        ("json", 7),
        ("os.path", 1),
        ("pkg", 2),
        ("pkg.extra", 4),
        ("pkg.models", 3),
        ("pkg.models.Thing", 3),
        ("pkg.other", 10),
        ("pkg.plugins.a", 9),
        ("pkg.sibling", 2),
    ]
    assert sorted(dynamic, key=lambda d: d["line"]) == [
        {"line": 8, "call": "import_module", "target": None},
        {"line": 9, "call": "import_module", "target": "pkg.plugins.a"},
        {"line": 10, "call": "__import__", "target": "pkg.other"},
    ]


def _graph() -> ImportGraph:
    return ImportGraph.build(
        {
            "src/app/__init__.py": "",
            "src/app/models.py": "X = 1\n",
            "src/app/service.py": "from .models import X\n",
            "src/app/api.py": "from app import service\n",
            "src/app/loader.py": "import importlib\nmod = importlib.import_module('app.plugin')\n",
            "src/app/plugin.py": "",
            "tests/helpers.py": "from app.api import *\n",
            "tests/test_api.py": "import helpers\n",
            "tests/test_models.py": "from app.models import X\n",
            "tests/test_plugin.py": "import app.loader\n",
            "tests/unit/conftest.py": "from app.models import X\n",
            "tests/unit/test_plain.py": "def test(): pass\n",
            "tests/test_broken.py": "def (:\n",
            "app_gone.py": None,
            "tests/test_gone.py": "import app_gone\n",
        }
    )


def test_graph_edges_resolve_src_layout_relative_and_sibling_imports() -> None:
    graph = _graph()
    assert graph.edges["src/app/service.py"] == {"src/app/__init__.py", "src/app/models.py"}
    assert graph.edges["src/app/api.py"] == {"src/app/__init__.py", "src/app/service.py"}
    assert graph.edges["tests/test_api.py"] == {"tests/helpers.py"}
    assert "src/app/plugin.py" in graph.edges["src/app/loader.py"]
    assert graph.nodes["tests/test_broken.py"].error.startswith("cannot parse")
    assert graph.summary()["unparsable"] == ["tests/test_broken.py"]


def test_impacted_tests_with_chains_through_helpers_and_conftest() -> None:
    graph = _graph()
    impacted = graph.impacted_tests({"src/app/models.py"})
    assert impacted == {
        "tests/test_api.py": [
            "tests/test_api.py",
            "tests/helpers.py",
            "src/app/api.py",
            "src/app/service.py",
            "src/app/models.py",
        ],
        "tests/test_models.py": ["tests/test_models.py", "src/app/models.py"],
        "tests/unit/test_plain.py": ["tests/unit/test_plain.py", "tests/unit/conftest.py", "src/app/models.py"],
    }
    changed = {"src/app/models.py"}
    assert graph.describe_chain(impacted["tests/test_models.py"], changed) == "imports app.models"
    assert graph.describe_chain(impacted["tests/unit/test_plain.py"], changed) == (
        "uses fixtures from tests/unit/conftest.py, which imports app.models"
    )
    assert graph.describe_chain(impacted["tests/test_api.py"], changed) == (
        "imports (transitively) helpers -> app.api -> app.service -> app.models"
    )


def test_literal_dynamic_import_and_deleted_module_are_followed() -> None:
    graph = _graph()
    assert graph.impacted_tests({"src/app/plugin.py"}) == {
        "tests/test_plugin.py": ["tests/test_plugin.py", "src/app/loader.py", "src/app/plugin.py"]
    }
    assert list(graph.impacted_tests({"app_gone.py"})) == ["tests/test_gone.py"]


def test_a_changed_test_file_selects_itself_and_unrelated_change_selects_nothing() -> None:
    graph = _graph()
    assert graph.impacted_tests({"tests/test_models.py"}) == {"tests/test_models.py": ["tests/test_models.py"]}
    assert graph.describe_chain(["tests/test_models.py"], {"tests/test_models.py"}) == "the test file itself changed"
    assert graph.impacted_tests({"src/app/__init__.py"}).keys() >= {"tests/test_api.py", "tests/test_models.py"}
    lone = ImportGraph.build({"a.py": "", "tests/test_b.py": "import b\n", "b.py": ""})
    assert lone.impacted_tests({"a.py"}) == {}
