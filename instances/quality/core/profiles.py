"""Profiles (quick, python, comprehensive, ...) loaded from a TOML file: tools, timeouts, thresholds."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import QualityError

DEFAULT_PROFILES_FILE = Path(__file__).with_name("profiles.toml")
DEFAULT_PROFILE = "python"
KNOWN_TOOLS = ("tests", "lint", "security", "dependencies", "changes", "e2e", "api", "performance")
# Per-profile settings of the app-level steps: [profiles.NAME.e2e], .api, .performance.
APP_SETTINGS = {
    "e2e": ("path", "start_command", "wait_url"),
    "api": ("collection", "environment", "start_command", "wait_url"),
    "performance": ("url", "start_command", "wait_url"),
}
THRESHOLD_KEYS = (
    "min_pass_rate",
    "min_coverage",
    "max_lint_findings",
    "max_high_severity",
    "max_medium_severity",
    "min_score",
    "min_performance",
)
_BUILTIN_TIMEOUTS = {
    "tests": 600.0,
    "lint": 120.0,
    "security": 180.0,
    "dependencies": 120.0,
    "changes": 60.0,
    "e2e": 600.0,
    "api": 300.0,
    "performance": 300.0,
}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    tools: tuple[str, ...] = ("tests", "lint")
    coverage: bool = True
    javascript: bool = False
    timeouts: dict[str, float] = field(default_factory=lambda: dict(_BUILTIN_TIMEOUTS))
    thresholds: dict[str, float] = field(default_factory=dict)
    max_output_bytes: int = 2_000_000
    max_findings: int = 500
    vuln_probe_timeout: float = 3.0
    apps: dict[str, dict[str, str]] = field(default_factory=dict)

    def timeout(self, tool: str) -> float:
        return float(self.timeouts.get(tool, _BUILTIN_TIMEOUTS.get(tool, 300.0)))

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tools": list(self.tools),
            "coverage": self.coverage,
            "javascript": self.javascript,
            "timeouts": dict(self.timeouts),
            "thresholds": dict(self.thresholds),
            "apps": {step: dict(values) for step, values in self.apps.items()},
        }


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise QualityError("bad_profiles", f"{where} must be a non-negative number, got {value!r}")
    return float(value)


def _build(name: str, raw: dict[str, Any], defaults: dict[str, Any]) -> Profile:
    merged = {**defaults, **raw}
    tools = merged.get("tools", ["tests", "lint"])
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise QualityError("bad_profiles", f"profiles.{name}.tools must be a list of names")
    unknown = sorted(set(tools) - set(KNOWN_TOOLS))
    if unknown:
        raise QualityError("bad_profiles", f"profiles.{name}.tools has unknown {unknown}; known: {list(KNOWN_TOOLS)}")
    timeouts = dict(_BUILTIN_TIMEOUTS)
    for source in (defaults.get("timeouts", {}), raw.get("timeouts", {})):
        for tool, value in source.items():
            timeouts[tool] = _number(value, f"profiles.{name}.timeouts.{tool}")
    thresholds: dict[str, float] = {}
    for key, value in raw.get("thresholds", {}).items():
        if key not in THRESHOLD_KEYS:
            raise QualityError("bad_profiles", f"profiles.{name}.thresholds.{key} is not one of {THRESHOLD_KEYS}")
        thresholds[key] = _number(value, f"profiles.{name}.thresholds.{key}")
    for flag in ("coverage", "javascript"):
        if not isinstance(merged.get(flag, False), bool):
            raise QualityError("bad_profiles", f"profiles.{name}.{flag} must be true or false")
    apps: dict[str, dict[str, str]] = {}
    for step, keys in APP_SETTINGS.items():
        table = raw.get(step, {})
        if not isinstance(table, dict) or any(k not in keys or not isinstance(v, str) for k, v in table.items()):
            raise QualityError("bad_profiles", f"profiles.{name}.{step} takes only text values for {list(keys)}")
        if table:
            apps[step] = dict(table)
    return Profile(
        name=name,
        description=str(merged.get("description", "")),
        tools=tuple(tools),
        coverage=merged.get("coverage", True),
        javascript=merged.get("javascript", False),
        timeouts=timeouts,
        thresholds=thresholds,
        max_output_bytes=int(_number(merged.get("max_output_bytes", 2_000_000), f"profiles.{name}.max_output_bytes")),
        max_findings=int(_number(merged.get("max_findings", 500), f"profiles.{name}.max_findings")),
        vuln_probe_timeout=_number(merged.get("vuln_probe_timeout", 3.0), f"profiles.{name}.vuln_probe_timeout"),
        apps=apps,
    )


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Read and validate a profiles file; raises QualityError with a readable message."""
    source = path or DEFAULT_PROFILES_FILE
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QualityError("bad_profiles", f"cannot read profiles file {source}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise QualityError("bad_profiles", f"profiles file {source} is not valid TOML: {exc}") from exc
    defaults = data.get("defaults", {})
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        raise QualityError("bad_profiles", f"profiles file {source} defines no [profiles.NAME] table")
    defaults_for_merge = {k: v for k, v in defaults.items() if k != "timeouts"}
    defaults_for_merge["timeouts"] = defaults.get("timeouts", {})
    return {name: _build(name, raw, defaults_for_merge) for name, raw in raw_profiles.items()}


def pick_profile(profiles: dict[str, Profile], name: str | None) -> Profile:
    """The named profile, else the default one ('python', or the first defined)."""
    if name:
        if name not in profiles:
            raise QualityError("unknown_profile", f"unknown profile {name!r}; known: {sorted(profiles)}")
        return profiles[name]
    return profiles.get(DEFAULT_PROFILE) or next(iter(profiles.values()))
