from __future__ import annotations

import pytest

from bridge.catalog import load_catalog
from bridge.runtime import docker as docker_runtime
from bridge.runtime import select_runtime
from bridge.runtime.process import ProcessRuntime
from bridge.settings import SettingsError, load_settings


def test_auto_falls_back_to_processes_and_says_why(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(docker_runtime, "docker_available", lambda images: (False, "no Docker engine answers"))
    with caplog.at_level("INFO"):
        runtime = select_runtime(load_settings(data_dir=tmp_path, runtime="auto"), load_catalog())
    assert isinstance(runtime, ProcessRuntime)
    assert "runtime: process (PARADISE_RUNTIME=auto; no Docker engine answers)" in caplog.text


def test_docker_asked_but_unusable_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(docker_runtime, "docker_available", lambda images: (False, "images not built: x"))
    with pytest.raises(SettingsError, match="PARADISE_RUNTIME=docker but images not built"):
        select_runtime(load_settings(data_dir=tmp_path, runtime="docker"), load_catalog())


def test_auto_checks_every_image_of_the_catalog(tmp_path, monkeypatch) -> None:
    asked: list[list[str]] = []
    monkeypatch.setattr(docker_runtime, "docker_available", lambda images: (asked.append(images), (False, "x"))[1])
    select_runtime(load_settings(data_dir=tmp_path, runtime="auto"), load_catalog())
    assert asked == [["devops-paradise/quality:latest", "devops-paradise/serena:latest"]]
    process = select_runtime(load_settings(data_dir=tmp_path, runtime="process"), load_catalog())
    assert isinstance(process, ProcessRuntime) and len(asked) == 1  # process never asks the engine
