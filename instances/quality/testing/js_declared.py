"""The package's own test command: when package.json's `test` script runs jest or vitest with flags
(`vitest run --typecheck`, `jest --config jest.ci.js`, `vitest --project unit`), run_tests runs that
runner with the same flags, so what the project calls its tests is what runs (ufo's type tests run
only under `--typecheck`).  Flags that would take over what the quality tools need to read the result
(reporters, output files, coverage, watch mode, test-name filters, bail/workers, which have their own
arguments) are left out, and the reply says which flags were used and which were not."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

_OWN_OPTIONS = (
    "--reporter",
    "--reporters",
    "--outputFile",
    "--outputfile",
    "--json",
    "--coverage",
    "--collectCoverage",
    "--watch",
    "--watchAll",
    "--ui",
    "--open",
    "--bail",
    "--maxWorkers",
    "--testNamePattern",
    "--update",
    "--listTests",
    "--ci",
    "--silent",
    "--passWithNoTests",
)
_OWN_SHORT = {"-t", "-w", "-u", "-b", "-i"}
_TAKES_VALUE = {
    "--project",
    "--config",
    "-c",
    "--dir",
    "--root",
    "-r",
    "--environment",
    "--env",
    "--pool",
    "--mode",
    "--shard",
    "--testTimeout",
    "--exclude",
    "--selectProjects",
    "--testPathIgnorePatterns",
    "--testEnvironment",
    "--reporter",
    "--outputFile",
    "--testNamePattern",
    "-t",
    "--maxWorkers",
}
_SUBCOMMANDS = {"run", "watch", "dev"}
_LAUNCHERS = {"npx", "pnpx", "bunx", "exec", "pnpm", "yarn", "npm", "cross-env", "dotenv", "--"}
_SEPARATORS = {"&&", "||", ";", "|", "&"}


@dataclass
class DeclaredCommand:
    script: str
    used: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def describe(self, runner: str) -> dict[str, Any]:
        return {"script": self.script, "runner": runner, "flags_used": self.used, "flags_not_used": self.ignored}


def _segments(tokens: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token in _SEPARATORS:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _runner_args(segment: list[str], runner: str) -> list[str] | None:
    """The arguments after `runner` in one command of the script (None: this command is not the runner)."""
    index = 0
    while index < len(segment) and ("=" in segment[index] and not segment[index].startswith("-")):
        index += 1  # FOO=bar environment assignments
    while index < len(segment) and (segment[index] in _LAUNCHERS or "=" in segment[index]):
        index += 1
    if index < len(segment) and segment[index].rsplit("/", 1)[-1] == runner:
        return segment[index + 1 :]
    return None


def _is_own(flag: str) -> bool:
    name = flag.split("=", 1)[0]
    return name in _OWN_SHORT or any(name == o or name.startswith(o + ".") for o in _OWN_OPTIONS)


def _split_flags(args: list[str]) -> DeclaredCommand:
    found = DeclaredCommand("")
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if not token.startswith("-"):
            if token not in _SUBCOMMANDS or found.used or found.ignored:
                found.ignored.append(token)  # a path filter of the script: the call's own selection decides
            continue
        group = [token]
        if "=" not in token and token in _TAKES_VALUE and index < len(args) and not args[index].startswith("-"):
            group.append(args[index])
            index += 1
        (found.ignored if _is_own(token) else found.used).extend(group)
    return found


def declared_command(manifest: dict[str, Any], runner: str) -> DeclaredCommand | None:
    """The flags of the package's `test` script for `runner`, or None when the script does not run it."""
    scripts = manifest.get("scripts")
    script = scripts.get("test") if isinstance(scripts, dict) else None
    if not isinstance(script, str) or runner not in script:
        return None
    try:
        tokens = shlex.split(script)
    except ValueError:
        return None
    for segment in _segments(tokens):
        args = _runner_args(segment, runner)
        if args is not None:
            found = _split_flags(args)
            found.script = script
            return found
    return None


def declared_flags(
    manifest: dict[str, Any], runner: str, max_failures: int | None
) -> tuple[list[str], dict[str, Any] | None, list[str]]:
    """(the script's flags to run with, what the reply says of the script, notes)."""
    declared = declared_command(manifest, runner)
    if declared is None:
        return [], None, []
    notes = [
        f"ran {runner} as package.json's test script does ({declared.script!r})"
        + (f" with {' '.join(declared.used)}" if declared.used else "")
        + (f"; not used: {' '.join(declared.ignored)}" if declared.ignored else "")
    ]
    if max_failures and any(flag.startswith("--typecheck") for flag in declared.used):
        notes.append("vitest's type tests (tsc) run apart from its workers: --bail does not stop them")
    return declared.used, declared.describe(runner), notes
