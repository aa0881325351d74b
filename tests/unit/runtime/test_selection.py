"""The one runtime-selection table (bridge/runtime/selection.py), and the bridge and doctor built on it."""

from __future__ import annotations

import pytest

from bridge.catalog import load_catalog
from bridge.host.doctor import choose_runtime as doctor_choice
from bridge.runtime import runtime_choice, select_runtime
from bridge.runtime import selection as selection_module
from bridge.runtime.process import ProcessRuntime
from bridge.runtime.selection import MachineFacts, choose_runtime
from bridge.settings import SettingsError, load_settings

ENGINE = {"engine_answers": True, "engine_detail": "engine 27 answers"}
NO_ENGINE = {"engine_answers": False, "engine_detail": "no Docker engine answers (DockerException)"}
SANDBOX = {"sandbox_usable": True, "sandbox_detail": "bwrap ok"}
NO_SANDBOX = {"sandbox_usable": False, "sandbox_detail": "bubblewrap (bwrap) is not installed"}


@pytest.mark.parametrize(
    ("setting", "facts", "chosen", "usable", "sandboxed"),
    [
        ("auto", {**ENGINE, **SANDBOX}, "docker", True, None),
        ("auto", {**ENGINE, "missing_images": ["x:1"], **SANDBOX}, "process", True, True),
        ("auto", {**NO_ENGINE, **SANDBOX}, "process", True, True),
        ("auto", {**NO_ENGINE, **NO_SANDBOX}, "process", True, False),
        ("docker", {**ENGINE}, "docker", True, None),
        ("docker", {**ENGINE, "missing_images": ["x:1"]}, "docker", False, None),
        ("docker", {**NO_ENGINE}, "docker", False, None),
        ("process", {**ENGINE, **SANDBOX}, "process", True, True),
        ("process", {**NO_SANDBOX}, "process", True, False),
        ("process", {**SANDBOX, "python_ok": False, "python_version": "3.9.1"}, "process", False, None),
        ("swarm", {**ENGINE, "swarm_usable": True, "swarm_detail": "swarm manager n1"}, "swarm", True, None),
        ("swarm", {**ENGINE, "swarm_usable": False, "swarm_detail": "not in a swarm"}, "swarm", False, None),
        ("kubernetes", {}, "process", False, None),
    ],
)
def test_the_table(setting: str, facts: dict, chosen: str, usable: bool, sandboxed: bool | None) -> None:
    choice = choose_runtime(setting, MachineFacts(**facts))
    assert (choice.chosen, choice.usable, choice.sandboxed) == (chosen, usable, sandboxed), choice


def test_reasons_say_why() -> None:
    missing = choose_runtime("auto", MachineFacts(**ENGINE, missing_images=["a:1", "b:1"], **SANDBOX))
    assert missing.reason.startswith("no Docker runtime: images not built: a:1, b:1")
    assert "sandboxed by bubblewrap" in missing.reason
    old = choose_runtime("process", MachineFacts(**SANDBOX, python_ok=False, python_version="3.9.1"))
    assert old.reason == "Python 3.9.1 is too old; 3.11 or newer is needed"
    swarm = choose_runtime("swarm", MachineFacts(swarm_usable=False, swarm_detail="not in a swarm"))
    assert "not in a swarm" in swarm.reason


def test_unsandboxed_is_said_loudly_and_names_the_scope() -> None:
    one = choose_runtime("process", MachineFacts(**NO_SANDBOX))
    assert one.usable and one.warning and "UNSANDBOXED" in one.warning and "one client only" in one.warning
    assert "bubblewrap (bwrap) is not installed" in one.warning and one.warning in one.reason
    many = choose_runtime("process", MachineFacts(**NO_SANDBOX, allow_unsandboxed=True))
    assert "PARADISE_ALLOW_UNSANDBOXED=true" in (many.warning or "")
    assert choose_runtime("process", MachineFacts(**SANDBOX)).warning is None


def fake_facts(monkeypatch: pytest.MonkeyPatch, **facts: object) -> list[tuple[str, list[str]]]:
    asked: list[tuple[str, list[str]]] = []

    def gather(setting: str, images: list[str], **_: object) -> MachineFacts:
        asked.append((setting, list(images)))
        return MachineFacts(**facts)  # type: ignore[arg-type]

    monkeypatch.setattr("bridge.runtime.gather_facts", gather)
    return asked


def test_the_bridge_falls_back_to_sandboxed_processes_and_logs_why(tmp_path, monkeypatch, caplog) -> None:
    asked = fake_facts(monkeypatch, **NO_ENGINE, **SANDBOX)
    with caplog.at_level("INFO"):
        runtime = select_runtime(load_settings(data_dir=tmp_path, runtime="auto"), load_catalog())
    assert isinstance(runtime, ProcessRuntime) and runtime.sandboxed
    assert "runtime: process (PARADISE_RUNTIME=auto; no Docker runtime: no Docker engine answers" in caplog.text
    assert asked == [("auto", ["devops-paradise/quality:latest", "devops-paradise/serena:latest"])]


def test_the_bridge_warns_loudly_without_a_sandbox(tmp_path, monkeypatch, caplog) -> None:
    fake_facts(monkeypatch, **NO_SANDBOX)
    with caplog.at_level("WARNING"):
        runtime = select_runtime(load_settings(data_dir=tmp_path, runtime="process"), load_catalog())
    assert isinstance(runtime, ProcessRuntime) and not runtime.sandboxed and not runtime.allow_unsandboxed
    warning = next(r for r in caplog.records if r.levelname == "WARNING")
    assert "UNSANDBOXED" in warning.getMessage() and "one client only" in warning.getMessage()


def test_an_unusable_setting_stops_start_up_with_one_line(tmp_path, monkeypatch) -> None:
    fake_facts(monkeypatch, **ENGINE, missing_images=["x:1"])
    with pytest.raises(SettingsError, match="PARADISE_RUNTIME=docker but images not built: x:1"):
        select_runtime(load_settings(data_dir=tmp_path, runtime="docker"), load_catalog())


def test_gather_facts_looks_only_where_the_setting_needs(monkeypatch) -> None:
    looked: list[str] = []
    monkeypatch.setattr("bridge.runtime.engine.probe_engine", lambda *a, **k: looked.append("engine"))
    monkeypatch.setattr("bridge.runtime.sandbox.bwrap_usable", lambda: (looked.append("bwrap"), (True, "ok"))[1])
    facts = selection_module.gather_facts("process")
    assert looked == ["bwrap"] and facts.sandbox_usable and facts.engine_answers is None


def test_doctor_and_the_bridge_agree(tmp_path, monkeypatch) -> None:
    """doctor's choose_runtime keeps its report shape and answers from the same table."""
    fake_facts(monkeypatch, **NO_ENGINE, **SANDBOX)
    monkeypatch.setattr("bridge.runtime.sandbox.bwrap_usable", lambda: (True, "bwrap ok"))
    docker = {"engine": False, "detail": NO_ENGINE["engine_detail"], "images": {}}
    report = doctor_choice("auto", {"ok": True, "version": "3.11.7"}, docker)
    bridge = runtime_choice(load_settings(data_dir=tmp_path, runtime="auto"), load_catalog())
    assert (report["chosen"], report["usable"], report["reason"]) == (bridge.chosen, bridge.usable, bridge.reason)
    assert report["setting"] == "auto" and report["sandboxed"] is True
