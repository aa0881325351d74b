"""MCP servers from the registries: ``npm:NAME@VERSION`` and ``pypi:NAME==VERSION``, installed once, pinned.

A catalog entry may name a package instead of a command. The package is installed ahead of time (``devops-
paradise catalog add``), never at run time, so an instance needs no network: into ``DATA_DIR/packages/<slug>``
(npm: ``npm install --prefix``, install scripts off; PyPI: a virtualenv of its own), then made read-only. A
manifest written last (``paradise-package.json``: the program to run) marks the install complete; a directory
without one is a broken attempt and is replaced. The sandbox mounts the whole directory read-only (it is named
on the instance's command line), so symlinked bins and a package's other files are all there.

Only exact versions are accepted: a range would make two installs differ and ``catalog add`` not repeatable.

For the Docker runtime the same install runs inside an image build (images/package/Dockerfile runs this file as
a script: ``python packages.py REF ROOT``), tagged ``Package.image_tag``, so a container needs no registry.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "paradise-package.json"
IMAGE_REPOSITORY = "devops-paradise/package"  # one tag per package and version (Package.image_tag)
_NPM = re.compile(r"npm:((?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*)@([0-9][0-9A-Za-z.+-]*)")
_PYPI = re.compile(r"pypi:([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)")
_VERSION_RANGE = re.compile(r"[\^~*<>=| ]|^x$|\.x")
INSTALL_TIMEOUT = 900  # seconds one install may take (a slow mirror, a big dependency tree)

Progress = Callable[[str], None]


class PackageError(ValueError):
    """A package reference that is not exact, or an install that failed (the message says how)."""


@dataclass(frozen=True)
class Package:
    """One pinned package of a registry."""

    registry: str  # "npm" | "pypi"
    name: str
    version: str

    @classmethod
    def parse(cls, ref: str) -> Package:
        for registry, pattern in (("npm", _NPM), ("pypi", _PYPI)):
            match = pattern.fullmatch(ref.strip())
            if match:
                if _VERSION_RANGE.search(match.group(2)):
                    break
                return cls(registry, match.group(1), match.group(2))
        raise PackageError(
            f"package {ref!r} is not a pinned registry package: use npm:NAME@VERSION or pypi:NAME==VERSION with an "
            "exact version (look it up with `npm view NAME version` or `pip index versions NAME`)"
        )

    @property
    def ref(self) -> str:
        return f"npm:{self.name}@{self.version}" if self.registry == "npm" else f"pypi:{self.name}=={self.version}"

    @property
    def slug(self) -> str:
        """The directory name under DATA_DIR/packages: registry, name and version, file-name safe."""
        return re.sub(r"[^A-Za-z0-9.+-]+", "-", f"{self.registry}-{self.name.lstrip('@')}-{self.version}")

    def directory(self, packages_dir: Path) -> Path:
        return packages_dir / self.slug

    @property
    def image_tag(self) -> str:
        """The Docker image of this package (images/package/Dockerfile): a tag allows no '+' and 128 chars."""
        return f"{IMAGE_REPOSITORY}:{self.slug.replace('+', '_')[:128]}"


def packages_dir(data_dir: Path) -> Path:
    return data_dir / "packages"


def installed_program(package: Package, root: Path) -> list[str] | None:
    """The program (argv) an installed package runs, from its manifest; None when it is not installed."""
    try:
        manifest = json.loads((package.directory(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("package") != package.ref:
        return None
    argv = manifest.get("argv")
    return argv if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv) else None


def install(package: Package, root: Path, progress: Progress = print) -> tuple[list[str], bool]:
    """Install ``package`` under ``root`` unless it is there: (its program argv, True when installed now).
    Two installs of one package at once take turns (a lock file beside it): the second finds it installed."""
    root.mkdir(parents=True, exist_ok=True, mode=0o755)
    with open(root / f".{package.slug}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _install_unlocked(package, root, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install_unlocked(package: Package, root: Path, progress: Progress) -> tuple[list[str], bool]:
    argv = installed_program(package, root)
    if argv is not None:
        progress(f"{package.ref} is installed in {package.directory(root)}")
        return argv, False
    target = package.directory(root)
    if target.exists():
        progress(f"removing the unfinished install in {target}")
        remove_tree(target)
    began = time.monotonic()
    progress(f"installing {package.ref} into {target}")
    try:
        argv = _install_npm(package, target, progress) if package.registry == "npm" else _install_pypi(
            package, target, progress
        )
        manifest = {"package": package.ref, "argv": argv, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
        (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        remove_tree(target)
        raise
    make_read_only(target)
    progress(f"installed {package.ref} in {time.monotonic() - began:.1f}s; runs {' '.join(argv)}")
    return argv, True


def _run(argv: list[str], progress: Progress, cwd: Path | None = None) -> None:
    """Run an installer, relaying its output line by line; PackageError with its last lines when it fails."""
    progress("$ " + " ".join(argv))
    tail: list[str] = []
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise PackageError(f"cannot run {argv[0]}: {exc.strerror}") from None
    assert proc.stdout is not None
    deadline = time.monotonic() + INSTALL_TIMEOUT
    for line in proc.stdout:
        line = line.rstrip()
        if line and not line.lstrip().startswith("WARNING: Location"):  # pip's note on each missing extra index
            tail = [*tail[-9:], line]
            progress(f"  {line}")
        if time.monotonic() > deadline:
            proc.kill()
            break
    if proc.wait() != 0:
        raise PackageError(f"{' '.join(argv[:3])} failed (exit {proc.returncode}): " + " | ".join(tail[-3:]))


def _install_npm(package: Package, target: Path, progress: Progress) -> list[str]:
    # PARADISE_PACKAGE_NODE: the Node that runs the server, when not the one that runs npm (an image build)
    npm, node = shutil.which("npm"), os.environ.get("PARADISE_PACKAGE_NODE") or shutil.which("node")
    if npm is None or node is None:
        raise PackageError("npm packages need node and npm on the bridge's PATH (https://nodejs.org)")
    target.mkdir(mode=0o755)
    # Install scripts are never run: they would run as the bridge's user, outside any sandbox.
    _run([npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", "--omit=dev", "--ignore-scripts",
          "--loglevel=error", f"{package.name}@{package.version}"], progress)
    return [str(Path(node).resolve()), str(_npm_bin(package, target))]


def _npm_bin(package: Package, target: Path) -> Path:
    """The file the package's ``bin`` names (the one named like the package when there are several)."""
    home = target / "node_modules" / package.name
    try:
        meta = json.loads((home / "package.json").read_text())
    except (OSError, ValueError):
        raise PackageError(f"{package.ref}: npm installed no readable package.json in {home}") from None
    bins = meta.get("bin")
    if isinstance(bins, str):
        return home / bins
    if isinstance(bins, dict) and bins:
        short = package.name.rsplit("/", 1)[-1]
        return home / (bins.get(short) or bins.get(package.name) or next(iter(bins.values())))
    if isinstance(meta.get("main"), str):
        return home / meta["main"]
    raise PackageError(f"{package.ref} names no program (no bin or main in its package.json)")


def _install_pypi(package: Package, target: Path, progress: Progress) -> list[str]:
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", str(target)], progress)
    pip = target / "bin" / "pip"
    _run([str(pip), "install", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
          f"{package.name}=={package.version}"], progress)
    scripts = _console_scripts(target, package.name)
    if not scripts:
        raise PackageError(f"{package.ref} installs no console script to run")
    return [str(target / "bin" / scripts[0])]


def _console_scripts(venv: Path, name: str) -> list[str]:
    """The package's console scripts (from its entry_points.txt), the one named like the package first."""
    wanted = re.sub(r"[-_.]+", "_", name).lower()
    found: list[str] = []
    for dist in venv.glob("lib/python*/site-packages/*.dist-info"):
        if re.sub(r"[-_.]+", "_", dist.name.split("-", 1)[0]).lower() != wanted:
            continue
        points = dist / "entry_points.txt"
        section = ""
        for line in (points.read_text().splitlines() if points.exists() else []):
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[console_scripts]" and "=" in line:
                found.append(line.split("=", 1)[0].strip())
    return sorted(found, key=lambda script: re.sub(r"[-_.]+", "_", script).lower() != wanted)


def make_read_only(tree: Path) -> None:
    """No write bit left anywhere in the tree (the sandbox mounts it read-only too; this guards the host)."""
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def remove_tree(tree: Path) -> None:
    """Delete an install, read-only as it is (write bits back on directories first)."""
    if not tree.exists():
        return
    for path in [tree, *tree.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR | stat.S_IXUSR)
    shutil.rmtree(tree)


def size_of(tree: Path) -> int:
    return sum(p.lstat().st_size for p in tree.rglob("*") if not p.is_dir()) if tree.exists() else 0



if __name__ == "__main__":  # images/package/Dockerfile: python packages.py REF ROOT
    install(Package.parse(sys.argv[1]), Path(sys.argv[2]))
