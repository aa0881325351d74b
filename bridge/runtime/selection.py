"""The one runtime-selection table: which runtime a setting picks on a machine, and whether it can serve.

``choose_runtime(setting, facts)`` is pure: the bridge (``select_runtime``), ``doctor`` and ``setup`` all
ask it, so they can never disagree. ``gather_facts`` looks at the machine (the Docker engine, its images,
Swarm, Python, bubblewrap); each look is skipped when the setting cannot need it.

| setting | chosen                                                        | usable when                        |
|---------|---------------------------------------------------------------|------------------------------------|
| docker  | docker                                                        | engine answers and images exist    |
| swarm   | swarm                                                         | engine is an active Swarm manager  |
| process | process                                                       | Python ok (sandboxed, or not: said) |
| auto    | docker when engine answers and images exist, else process     | as for the chosen one              |
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Setting = Literal["auto", "docker", "process", "swarm"]
SETTINGS: tuple[Setting, ...] = ("auto", "docker", "process", "swarm")
MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class MachineFacts:
    """What the machine has. ``None`` means "not looked at" (the setting could not need it)."""

    engine_answers: bool | None = None
    engine_detail: str = "not checked"
    missing_images: list[str] = field(default_factory=list)
    swarm_usable: bool | None = None
    swarm_detail: str = "not checked"
    python_ok: bool = True
    python_version: str = ".".join(map(str, sys.version_info[:3]))
    sandbox_usable: bool | None = None
    sandbox_detail: str = "not checked"
    allow_unsandboxed: bool = False


@dataclass(frozen=True)
class RuntimeChoice:
    setting: str
    chosen: Literal["docker", "process", "swarm"]
    usable: bool
    reason: str
    # Process runtime only: True = bubblewrap sandbox, False = unsandboxed (one client, or ALLOW_UNSANDBOXED).
    sandboxed: bool | None = None
    warning: str | None = None  # said loudly at start-up and by doctor

    def as_dict(self) -> dict[str, object]:
        return {"setting": self.setting, "chosen": self.chosen, "usable": self.usable, "reason": self.reason,
                "sandboxed": self.sandboxed, "warning": self.warning}  # fmt: skip


def choose_runtime(setting: str, facts: MachineFacts) -> RuntimeChoice:
    """The table above, as a function of the setting and the facts only."""
    if setting not in SETTINGS:
        known = ", ".join(SETTINGS)
        return RuntimeChoice(setting, "process", False, f"unknown runtime {setting!r} (use one of {known})")
    if setting == "swarm":
        return RuntimeChoice(setting, "swarm", bool(facts.swarm_usable), facts.swarm_detail)
    docker_ok, why_not = _docker_verdict(facts)
    if setting == "docker":
        return RuntimeChoice(setting, "docker", docker_ok, "Docker engine answers and the images exist" if docker_ok
                             else why_not)  # fmt: skip
    if setting == "auto" and docker_ok:
        return RuntimeChoice(setting, "docker", True, "Docker engine answers and the images exist")
    reason = "asked for" if setting == "process" else f"no Docker runtime: {why_not}"
    return _process_choice(setting, facts, reason)


def _docker_verdict(facts: MachineFacts) -> tuple[bool, str]:
    if not facts.engine_answers:
        return False, facts.engine_detail if facts.engine_answers is False else "no Docker engine checked"
    if facts.missing_images:
        return False, f"images not built: {', '.join(facts.missing_images)} (run: devops-paradise images build)"
    return True, ""


def _process_choice(setting: str, facts: MachineFacts, reason: str) -> RuntimeChoice:
    if not facts.python_ok:
        reason = f"Python {facts.python_version} is too old; {'.'.join(map(str, MIN_PYTHON))} or newer is needed"
        return RuntimeChoice(setting, "process", False, reason)
    if facts.sandbox_usable:
        return RuntimeChoice(setting, "process", True, f"{reason}; instances sandboxed by bubblewrap", sandboxed=True)
    scope = "any number of clients (PARADISE_ALLOW_UNSANDBOXED=true)" if facts.allow_unsandboxed else "one client only"
    warning = (f"process instances run UNSANDBOXED as the bridge's user ({facts.sandbox_detail}); they can read "
               f"each other's files, so the bridge serves {scope}")  # fmt: skip
    return RuntimeChoice(setting, "process", True, f"{reason}; {warning}", sandboxed=False, warning=warning)


def gather_facts(
    setting: str,
    images: Iterable[str] = (),
    *,
    allow_unsandboxed: bool = False,
    python_ok: bool | None = None,
) -> MachineFacts:
    """Look at this machine for what ``setting`` may need (blocking: it asks the engine and runs bwrap once).
    ``images`` are the catalog's images (``auto``/``docker`` need every one of them)."""
    from bridge.runtime.sandbox import bwrap_usable  # these imports load the Docker SDK only when needed

    engine: dict[str, object] = {}
    if setting in ("auto", "docker", "swarm"):
        from bridge.runtime.engine import probe_engine

        probe = probe_engine(list(images) if setting != "swarm" else [])
        engine = {"engine_answers": probe.answers, "engine_detail": probe.detail,
                  "missing_images": probe.missing_images, "swarm_usable": probe.swarm_usable,
                  "swarm_detail": probe.swarm_detail}  # fmt: skip
    docker_ok = bool(engine.get("engine_answers")) and not engine.get("missing_images")
    sandbox: dict[str, object] = {}
    if setting == "process" or (setting == "auto" and not docker_ok):
        usable, detail = bwrap_usable()
        sandbox = {"sandbox_usable": usable, "sandbox_detail": detail}
    python = sys.version_info >= MIN_PYTHON if python_ok is None else python_ok
    return MachineFacts(**engine, **sandbox, python_ok=python, allow_unsandboxed=allow_unsandboxed)  # type: ignore[arg-type]
