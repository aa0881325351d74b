"""Sample workspaces for the quality instance's integration tests (real files, real git repos)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

GIT_IDENTITY = [
    "-c",
    "user.name=Quality Test",
    "-c",
    "user.email=quality@example.com",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def init_repo(root: Path) -> None:
    git(root, "init", "-q")


# ----- passing project: 5 tests, known coverage ----------------------------------------------------
PASSING = {
    "shop/__init__.py": "",
    "shop/pricing.py": """
        def discount(price, percent):
            if percent < 0:
                raise ValueError("negative")
            return price * (100 - percent) / 100


        def unused_helper(x):
            return x * 2
        """,
    "shop/cart.py": """
        from shop.pricing import discount


        class Cart:
            def __init__(self):
                self.items = []

            def add(self, name, price, qty=1):
                if qty <= 0:
                    raise ValueError("qty must be positive")
                self.items.append((name, price, qty))

            def total(self, percent=0):
                gross = sum(price * qty for _, price, qty in self.items)
                return discount(gross, percent)
        """,
    "tests/test_cart.py": """
        import pytest

        from shop.cart import Cart


        def test_add_and_total():
            cart = Cart()
            cart.add("apple", 2.0, qty=3)
            assert cart.total() == 6.0


        def test_discounted_total():
            cart = Cart()
            cart.add("pear", 10.0)
            assert cart.total(percent=10) == 9.0


        def test_rejects_zero_quantity():
            with pytest.raises(ValueError):
                Cart().add("plum", 1.0, qty=0)
        """,
    "tests/test_pricing.py": """
        from shop.pricing import discount


        def test_discount():
            assert discount(200, 25) == 150


        def test_no_discount():
            assert discount(80, 0) == 80
        """,
}

# ----- failing project: one of three tests fails at a known line ---------------------------------
FAILING = {
    "calc.py": """
        def mul(a, b):
            return a * b
        """,
    "tests/test_calc.py": """
        from calc import mul


        def test_mul():
            assert mul(2, 3) == 6


        def test_mul_wrong():
            result = mul(2, 2)
            assert result == 5, "two times two"


        def test_mul_zero():
            assert mul(0, 9) == 0
        """,
}

# ----- lint and bandit findings, JavaScript tooling declared but not installed --------------------
FINDINGS = {
    "vault/__init__.py": "",
    "vault/store.py": """
        import hashlib
        import os
        import subprocess
        import sys


        def fingerprint(data):
            return hashlib.md5(data).hexdigest()


        def run(cmd):
            return subprocess.call(cmd, shell=True)


        def evaluate(expr):
            return eval(expr)


        def is_missing(value):
            unused = 1
            return value is None
        """,
    "tests/test_store.py": """
        from vault.store import is_missing


        def test_is_missing():
            assert is_missing(None)
            assert not is_missing(0)
        """,
    "package.json": json.dumps(
        {
            "name": "vault-ui",
            "version": "1.0.0",
            "scripts": {"test": "jest"},
            "dependencies": {"left-pad": "1.0.0"},
            "devDependencies": {"jest": "^29.7.0", "eslint": "^9.0.0"},
        }
    ),
    "package-lock.json": json.dumps(
        {
            "name": "vault-ui",
            "version": "1.0.0",
            "lockfileVersion": 3,
            "requires": True,
            "packages": {
                "": {"name": "vault-ui", "version": "1.0.0", "dependencies": {"left-pad": "1.0.0"}},
                "node_modules/left-pad": {
                    "version": "1.0.0",
                    "license": "WTFPL",
                    "integrity": (
                        "sha512-Xvly4CWfzT+7TGZRB2Qd7ub2dmJDomZCNf3BuT3XXfrNerQHtta82NNhbvToU4Qiz7IHrg21YB3UpL/6npCtmg=="
                    ),
                },
            },
        }
    ),
    "eslint.config.js": "module.exports = [];\n",
}

# ----- bad input: broken pyproject.toml, a venv without pytest, no git ---------------------------
BROKEN = {
    "pyproject.toml": '[project\nname = "broken"\n',
    "mod.py": """
        def ok():
            return True
        """,
    "tests/test_mod.py": """
        from mod import ok


        def test_ok():
            assert ok()


        def test_ok_again():
            assert ok() is True
        """,
}

# ----- no tests, no git; a pinned requirement -----------------------------------------------------
EMPTY = {
    "hello.py": """
        def greet(name):
            return f"hello {name}"
        """,
    "requirements.txt": "requests==2.19.0\n",
}

# ----- a suite that hangs --------------------------------------------------------------------------
HANGING = {
    "tests/test_slow.py": """
        import time


        def test_fast():
            assert True


        def test_hangs():
            time.sleep(600)


        def test_after():
            assert True
        """,
}

# ----- git repo: app.models changes; tests import it directly and transitively -------------------
GITREPO = {
    "app/__init__.py": "",
    "app/models.py": """
        TAX_RATE = 0.25


        def price_with_tax(net):
            return round(net * (1 + TAX_RATE), 2)


        class Product:
            def __init__(self, name, net):
                self.name = name
                self.net = net

            def gross(self):
                return price_with_tax(self.net)
        """,
    "app/service.py": """
        from app.models import Product


        def catalogue():
            return [Product("book", 10.0), Product("pen", 2.0)]


        def total_gross():
            return sum(p.gross() for p in catalogue())
        """,
    "app/api.py": """
        from . import service


        def handle_total():
            return {"total": service.total_gross()}
        """,
    "app/util.py": """
        def slug(text):
            return text.lower().replace(" ", "-")
        """,
    "tests/test_models.py": """
        from app.models import price_with_tax


        def test_price_with_tax():
            assert price_with_tax(10.0) == 12.5
        """,
    "tests/test_service.py": """
        from app.service import total_gross


        def test_total_gross():
            assert total_gross() == 15.0
        """,
    "tests/test_api.py": """
        from app.api import handle_total


        def test_handle_total():
            assert handle_total() == {"total": 15.0}
        """,
    "tests/test_util.py": """
        from app.util import slug


        def test_slug():
            assert slug("A B") == "a-b"
        """,
}
GITREPO_CHANGE = {"app/models.py": GITREPO["app/models.py"].replace("(1 + TAX_RATE), 2)", "(1 + TAX_RATE) + 1, 2)")}

# ----- git repo whose change uses a dynamic import and touches conftest.py -----------------------
FALLBACK = {
    "app/__init__.py": "",
    "app/core.py": "VALUE = 1\n",
    "app/plugins.py": """
        import importlib


        def load(name):
            return importlib.import_module(f"app.{name}")
        """,
    "tests/conftest.py": """
        import pytest


        @pytest.fixture
        def plugin_name():
            return "core"
        """,
    "tests/test_plugins.py": """
        from app.plugins import load


        def test_load(plugin_name):
            assert load(plugin_name).VALUE == 1
        """,
    "tests/test_core.py": """
        from app.core import VALUE


        def test_value():
            assert VALUE == 1
        """,
}
FALLBACK_CHANGE = {
    "app/plugins.py": FALLBACK["app/plugins.py"].replace('f"app.{name}"', 'f"app.{name.strip()}"'),
    "tests/conftest.py": FALLBACK["tests/conftest.py"].replace('"core"', '"core "'),
}

# ----- git repo for quality_report: an untested function added in the working tree ---------------
REPORT = {
    "lib/__init__.py": "",
    "lib/mathx.py": """
        def double(x):
            return x * 2
        """,
    "tests/test_mathx.py": """
        from lib.mathx import double


        def test_double():
            assert double(4) == 8
        """,
}
REPORT_CHANGE = {"lib/mathx.py": textwrap.dedent(REPORT["lib/mathx.py"]) + "\n\ndef triple(x):\n    return x * 3\n"}
REPORT_REGRESSION = {
    "lib/shell.py": """
        import subprocess
        import sys


        def run(cmd):
            return subprocess.call(cmd, shell=True)
        """,
}


def make_git_workspace(root: Path, base: dict[str, str], change: dict[str, str]) -> Path:
    write(root, base)
    init_repo(root)
    commit_all(root, "base")
    return write(root, change)


def build_all(base: Path) -> dict[str, Path]:
    """Every sample workspace under `base`, by name."""
    spaces = {
        "passing": write(base / "passing", PASSING),
        "failing": write(base / "failing", FAILING),
        "findings": write(base / "findings", FINDINGS),
        "broken": write(base / "broken", BROKEN),
        "empty": write(base / "empty", EMPTY),
        "hanging": write(base / "hanging", HANGING),
        "gitrepo": make_git_workspace(base / "gitrepo", GITREPO, GITREPO_CHANGE),
        "fallback": make_git_workspace(base / "fallback", FALLBACK, FALLBACK_CHANGE),
        "report": make_git_workspace(base / "report", REPORT, REPORT_CHANGE),
    }
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(spaces["broken"] / ".venv")], check=True)
    return spaces
