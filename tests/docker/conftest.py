"""Docker tests run on a real engine. Outside CI they skip (with the reason) when no engine answers; in CI
(CI=true) a missing engine or image is a failure, never a skip: .ci/run installs and starts the engine."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from bridge.host.images import IMAGES, build_images, image_exists
from tests.helpers import BridgeProcess, serving

TEST_LABEL = "devops-paradise.test"
INSTANCE_UID = 10001  # the images' own user; containers run as the workspace's owner
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI must run the Docker tests, but {reason}")
    pytest.skip(f"Docker tests skipped: {reason} (run scripts/ensure-docker.sh to start an engine)")


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        unavailable(f"no Docker engine answers ({exc.__class__.__name__})")
    remove_test_containers(client)
    yield client
    remove_test_containers(client)
    client.close()


def remove_test_containers(client: Any) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=true"}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": f"{TEST_LABEL}=true"}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            volume.remove(force=True)


def remove_managed(client: Any, clients: set[str]) -> None:
    """Everything the bridge labelled for these test clients: containers, volumes, networks."""
    label = "devops-paradise.managed=true"
    for container in client.containers.list(all=True, filters={"label": label}):
        if container.labels.get("devops-paradise.client") in clients:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": label}):
        if (volume.attrs.get("Labels") or {}).get("devops-paradise.client") in clients:
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)
    for network in client.networks.list(filters={"label": label}):
        if (network.attrs.get("Labels") or {}).get("devops-paradise.client") in clients:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


@pytest.fixture(scope="session")
def images(engine: Any) -> dict[str, str]:
    """{name: tag}, built once when missing (minutes the first time, on the registry-free base if needed)."""
    rebuild = os.environ.get("PARADISE_REBUILD_IMAGES") == "1"
    missing = [name for name, spec in IMAGES.items() if rebuild or not image_exists(spec.tag, engine)]
    if missing:
        build_images(missing, client=engine, progress=lambda line: print(f"[image build] {line}"))
    return {name: spec.tag for name, spec in IMAGES.items()}


# ---- pytest-docker: the compose file of throwaway fixture containers ----------------------------------


@pytest.fixture(scope="session")
def docker_compose_file(pytestconfig: pytest.Config) -> str:
    return str(Path(pytestconfig.rootpath) / "compose" / "test-fixtures.yml")


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """Compose v2 (``docker compose``) where installed, else the v1 ``docker-compose`` Debian ships."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return "docker compose"
    if shutil.which("docker-compose"):
        return "docker-compose"
    unavailable("neither 'docker compose' nor 'docker-compose' is installed")
    return ""


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"paradise-tests-{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup(images: dict[str, str]) -> list[str]:
    return ["up -d"]  # images exist (the images fixture built them): no build, no pull


def owned_workspace(root: Path, cls: str, owner: int = INSTANCE_UID) -> Path:
    """A small Python workspace owned by ``owner``, as a user's own project would be."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "__init__.py").write_text("")
    (root / "src" / "model.py").write_text(f"class {cls}:\n    def run(self) -> int:\n        return 1\n")
    for path in [root, *root.rglob("*")]:
        os.chown(path, owner, owner)
    return root


@pytest.fixture(scope="module")
def work(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A temporary directory for one test module (its workspaces, its bridge's data), removed afterwards;
    0755, since the containers run as an unprivileged uid that must traverse it."""
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    base = Path(tempfile.mkdtemp(prefix=f"paradise-{name}-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def docker_bridge(engine: Any, work: Path, clients: set[str], **env: str) -> Iterator[BridgeProcess]:
    """A real bridge on the Docker runtime, its workspaces under ``work``; the clients' objects removed before
    and after."""
    remove_managed(engine, clients)
    settings = {
        "PARADISE_RUNTIME": "docker",
        "PARADISE_READY_TIMEOUT": "180",
        "PARADISE_START_TIMEOUT": "120",
        "PARADISE_WORKSPACE_ROOTS": str(work),
        **env,
    }
    try:
        with serving(BridgeProcess(work / "data", env=settings)) as proc:
            assert httpx.get(proc.url + "/healthz").json()["runtime"] == "docker"
            yield proc
    finally:
        remove_managed(engine, clients)
