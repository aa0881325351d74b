"""Where the Node tools are, and which JavaScript packages (package.json directories) the workspace
has, with the test runner each one declares."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runner import clean_env
from .workspace import SKIP_DIRS, Workspace

# The toolchain the quality image (or CI, with `npm ci --prefix instances/quality/node`) installs.
BUNDLED_NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE_DIR_ENV = "PARADISE_QUALITY_NODE_DIR"
RUNNERS = ("jest", "vitest")
JS_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts")
_JEST_CONFIGS = tuple(f"jest.config.{ext}" for ext in ("js", "ts", "mjs", "cjs", "json"))
_VITEST_CONFIGS = tuple(f"vitest.config.{ext}" for ext in ("js", "ts", "mjs", "cjs", "mts", "cts"))
_MAX_PACKAGES = 200


def toolchain_dirs() -> list[Path]:
    """The installed toolchains after the workspace's own: the image's, then the repository's."""
    dirs = []
    configured = os.environ.get(NODE_DIR_ENV)
    if configured:
        dirs.append(Path(configured))
    dirs.append(BUNDLED_NODE_DIR)
    return dirs


def node_tool(name: str, *roots: Path) -> str | None:
    """A Node tool's executable: `<root>/node_modules/.bin/<name>` for each of `roots` (the package,
    then the workspace: a project's pinned version wins), then the bundled toolchains, then PATH."""
    for base in [*roots, *toolchain_dirs()]:
        candidate = base / "node_modules" / ".bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def node_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a Node tool: the bundled toolchain's `node` (the image's pinned Node, which
    the bundled tools need) ahead of the system's on PATH, colour off, CI mode."""
    env = clean_env({"CI": "true", "FORCE_COLOR": "0", **(extra or {})})
    bins = [
        str(d / "node_modules" / ".bin") for d in toolchain_dirs() if (d / "node_modules" / ".bin" / "node").exists()
    ]
    env["PATH"] = os.pathsep.join([*bins, env.get("PATH", os.defpath)])
    return env


def major_version(version: str | None) -> int:
    """The leading number of a version string ("10.2.1" -> 10); 0 when there is none (any tool's)."""
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        return 0


def default_eslint_config() -> Path | None:
    """The flat config used when the workspace has none (it ships with the bundled toolchain)."""
    for base in toolchain_dirs():
        candidate = base / "eslint.config.mjs"
        if candidate.is_file():
            return candidate
    return None


def tool_version(executable: str) -> str | None:
    """The version from the tool's package.json next to its .bin link, without running node."""
    path = Path(executable).resolve()
    for parent in path.parents:
        manifest = parent / "package.json"
        if manifest.is_file():
            try:
                return str(json.loads(manifest.read_text(encoding="utf-8")).get("version"))
            except (OSError, ValueError):
                return None
        if parent.name == "node_modules":
            return None
    return None


@dataclass
class JsPackage:
    """One package.json directory.  `rel` is workspace-relative ("" for the workspace root)."""

    rel: str
    path: Path
    manifest: dict[str, Any]
    runners: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return self.rel or "."

    def prefix(self) -> str:
        return f"{self.rel}/" if self.rel else ""

    def owns(self, rel_path: str) -> bool:
        return not self.rel or rel_path == self.rel or rel_path.startswith(self.prefix())

    @property
    def name(self) -> str | None:
        name = self.manifest.get("name")
        return name if isinstance(name, str) else None


def _deps(manifest: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
        value = manifest.get(key)
        if isinstance(value, dict):
            merged.update(value)
    return merged


def declared_runners(manifest: dict[str, Any], directory: Path) -> list[str]:
    """jest and/or vitest, as the package declares them (dependency, config file, config key or the
    `test` script)."""
    deps = _deps(manifest)
    scripts = manifest.get("scripts") if isinstance(manifest.get("scripts"), dict) else {}
    test_script = str(scripts.get("test", ""))
    found = []
    if (
        "jest" in deps
        or "jest" in manifest
        or any((directory / n).is_file() for n in _JEST_CONFIGS)
        or "jest" in test_script
    ):
        found.append("jest")
    if "vitest" in deps or any((directory / n).is_file() for n in _VITEST_CONFIGS) or "vitest" in test_script:
        found.append("vitest")
    return found


def read_manifest(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"{path.name} is invalid: {exc}"
    return (data, None) if isinstance(data, dict) else ({}, f"{path.name} is not an object")


def find_packages(ws: Workspace) -> list[JsPackage]:
    """Every package.json directory of the workspace (a monorepo has several), outermost first."""
    packages: list[JsPackage] = []
    for dirpath, dirnames, filenames in os.walk(ws.root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        if "package.json" not in filenames:
            continue
        directory = Path(dirpath)
        rel = directory.relative_to(ws.root).as_posix()
        manifest, error = read_manifest(directory / "package.json")
        rel = "" if rel == "." else rel
        packages.append(JsPackage(rel, directory, manifest, declared_runners(manifest, directory), error))
        if len(packages) >= _MAX_PACKAGES:
            break
    return sorted(packages, key=lambda p: (p.rel.count("/") if p.rel else -1, p.rel))


def owning_package(packages: list[JsPackage], rel_path: str) -> JsPackage | None:
    """The innermost package whose directory holds `rel_path`."""
    owners = [p for p in packages if p.owns(rel_path)]
    return max(owners, key=lambda p: len(p.rel), default=None)
