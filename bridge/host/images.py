"""Build the instance and bridge images with the Docker SDK (``devops-paradise images build``).

The build context is the repository root; the Dockerfiles are ``images/<name>/Dockerfile``. Every image
builds FROM the foundation (``images/base`` → ``devops-paradise/foundation:1``: Python, /opt/venv, the
host's CA bundle and package index settings, the non-root user), which ``build_images`` builds first; the
layer cache makes that quick when it has not changed. The foundation takes a ``BASE_IMAGE`` build arg: the
official ``python:3.11-slim`` normally, or the registry-free Debian base (``scripts/build-base-image.sh`` →
``devops-paradise/base:bookworm``) when no image registry is reachable. How the host reaches PyPI, its
Debian mirror and the npm registry goes into the foundation as build args (bridge/host/build_settings.py);
the other images get only ``FOUNDATION_IMAGE`` and the host's proxy variables.

A name that is a registry package (``npm:NAME@VERSION``, ``pypi:NAME==VERSION``) builds that package's image
(``images/package/Dockerfile``, tagged ``Package.image_tag``): what a catalog package runs on the Docker runtime.

Synchronous on purpose (call it in a worker thread from async code); no aiohttp, no sqlmodel.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bridge.catalog.packages import Package, PackageError
from bridge.host.build_settings import CERTS_DIR, ROOT, copy_host_ca_bundle, host_build_args, proxy_build_args

OFFICIAL_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = "devops-paradise/base:bookworm"
REGISTRY_PROBE_URL = "https://registry-1.docker.io/v2/"
TAIL_LINES = 30
# What every build asks of the daemon: a decoded progress stream, intermediate containers removed even
# when a step fails, never a pull (the bases are local or built here: registry-free), and no client-side
# timeout (a cold build runs for minutes).
_BUILD_OPTIONS: dict[str, Any] = {"decode": True, "rm": True, "forcerm": True, "pull": False, "timeout": None}


@dataclass(frozen=True)
class ImageSpec:
    name: str
    tag: str
    dockerfile: str  # relative to the build context (the repository root)
    description: str


IMAGES: dict[str, ImageSpec] = {
    "serena": ImageSpec(
        "serena", "devops-paradise/serena:latest", "images/serena/Dockerfile", "Serena + pyright instance"
    ),
    "quality": ImageSpec(
        "quality", "devops-paradise/quality:latest", "images/quality/Dockerfile", "quality MCP server instance"
    ),
    "bridge": ImageSpec("bridge", "devops-paradise/bridge:latest", "images/bridge/Dockerfile", "the bridge itself"),
}
# Not one of IMAGES (nothing runs it): built first, whenever any of them is built. The tag's number is the
# foundation's contract (paths, helpers, user) that the other Dockerfiles' FOUNDATION_IMAGE default names.
FOUNDATION = ImageSpec(
    "foundation", "devops-paradise/foundation:1", "images/base/Dockerfile", "shared foundation of the images"
)
PACKAGE_DOCKERFILE = "images/package/Dockerfile"


def package_of(name: str) -> Package | None:
    """The registry package a build name stands for (``npm:...``/``pypi:...``), else None."""
    try:
        return Package.parse(name) if name.startswith(("npm:", "pypi:")) else None
    except PackageError:
        return None


def _package_build(package: Package) -> tuple[ImageSpec, dict[str, str], dict[str, str]]:
    """(spec, build args, labels) of a package's image; the adapter runs the bridge's own MCP SDK version."""
    from importlib.metadata import version

    spec = ImageSpec("package", package.image_tag, PACKAGE_DOCKERFILE, f"{package.ref} behind the stdio adapter")
    args = {"PACKAGE": package.ref, "PACKAGE_REGISTRY": package.registry, "MCP_VERSION": version("mcp")}
    return spec, args, {"devops-paradise.package": package.ref}


class ImageBuildError(RuntimeError):
    """An image could not be built; ``image`` names it and ``tail`` holds the last build output lines."""

    def __init__(self, image: str, message: str, tail: Iterable[str] = ()) -> None:
        self.image = image
        self.tail = list(tail)
        text = f"building image {image} failed: {message}"
        if self.tail:
            text += "\n--- last build output ---\n" + "\n".join(self.tail)
        super().__init__(text)


def docker_client(client: Any = None) -> Any:
    """The given client, or one from the environment (DOCKER_HOST etc.); a clear error when no engine answers."""
    if client is not None:
        return client
    import docker  # imported lazily: the process runtime never needs the docker SDK

    try:
        new_client = docker.from_env()
        new_client.ping()
    except docker.errors.DockerException as exc:
        raise ImageBuildError("(engine)", f"no Docker engine answers ({exc}); run scripts/ensure-docker.sh") from exc
    return new_client


def image_exists(tag: str, client: Any = None) -> bool:
    import docker

    try:
        docker_client(client).images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def registry_reachable(url: str = REGISTRY_PROBE_URL, timeout: float = 3.0) -> bool:
    """True when the image registry answers HTTP at all (Docker Hub answers /v2/ with 401)."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - fixed https URL
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ssl.create_default_context()):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def base_image_default(client: Any = None) -> str:
    """``python:3.11-slim`` normally; the local debootstrap base when only it can be used (no registry)."""
    client = docker_client(client)
    if image_exists(OFFICIAL_BASE_IMAGE, client):
        return OFFICIAL_BASE_IMAGE
    if image_exists(LOCAL_BASE_IMAGE, client) and not registry_reachable():
        return LOCAL_BASE_IMAGE
    return OFFICIAL_BASE_IMAGE


# ---- building -------------------------------------------------------------------------------------


def build_images(
    names: Iterable[str],
    *,
    base_image: str | None = None,
    progress: Callable[[str], None] = print,
    client: Any = None,
    nocache: bool = False,
) -> dict[str, str]:
    """Build the foundation, then the named images (keys of IMAGES) in order; stream each output line to
    ``progress``. ``base_image`` is the foundation's BASE_IMAGE (default: see base_image_default).

    Returns {name: image id} of the named images. Raises ImageBuildError naming the image and its last
    output lines.
    """
    names = list(names)
    if not names:
        return {}
    unknown = [name for name in names if name not in IMAGES and package_of(name) is None]
    if unknown:
        raise ImageBuildError(", ".join(unknown), f"unknown image name(s); known: {', '.join(IMAGES)}, or a "
                              "pinned package npm:NAME@VERSION / pypi:NAME==VERSION")
    if not (ROOT / "images").is_dir():
        raise ImageBuildError(", ".join(names), f"no images/ directory in {ROOT}: build from a source checkout")
    client = docker_client(client)
    base = base_image or base_image_default(client)
    if not image_exists(base, client) and _pulls_from_docker_hub(base, client) and not registry_reachable():
        raise ImageBuildError(
            ", ".join(names),
            f"base image {base} is not available locally and no image registry is reachable; build the "
            f"registry-free base with scripts/build-base-image.sh (it makes {LOCAL_BASE_IMAGE}, used by default)",
        )
    try:
        bundle = copy_host_ca_bundle()
    except OSError as exc:  # e.g. a read-only checkout: build without the host's extra CAs
        bundle = None
        progress(f"warning: cannot copy the host CA bundle into {CERTS_DIR}: {exc}")
    foundation_args = {"BASE_IMAGE": base, **host_build_args()}
    progress(f"base image {base}; foundation build args: {', '.join(sorted(foundation_args))}")
    if bundle is not None:
        progress(f"trusting the host CA bundle inside the images ({bundle.relative_to(ROOT)})")
    labels = {"devops-paradise.base-image": base}
    _build_one(FOUNDATION, client, foundation_args, labels, progress, nocache=nocache)
    image_args = {"FOUNDATION_IMAGE": FOUNDATION.tag, **proxy_build_args()}
    built = {}
    for name in names:
        spec, extra_args, extra_labels = (IMAGES[name], {}, {}) if name in IMAGES else _package_build(
            package_of(name))  # type: ignore[arg-type]
        built[name] = _build_one(spec, client, {**image_args, **extra_args}, {**labels, **extra_labels}, progress,
                                 nocache=nocache)
    return built


def _pulls_from_docker_hub(reference: str, client: Any) -> bool:
    """True when the engine would pull ``reference`` from Docker Hub itself (no other registry, no mirror)."""
    first = reference.split("/", 1)[0]
    if "/" in reference and ("." in first or ":" in first or first == "localhost"):
        return False
    import docker
    import requests

    try:
        mirrors = (client.info().get("RegistryConfig") or {}).get("Mirrors") or []
    except (docker.errors.DockerException, requests.RequestException, AttributeError):
        mirrors = []  # an old engine or an odd answer: assume no mirror
    return not mirrors


def _build_one(
    spec: ImageSpec,
    client: Any,
    buildargs: dict[str, str],
    labels: dict[str, str],
    progress: Callable[[str], None],
    *,
    nocache: bool,
) -> str:
    import docker
    import requests

    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    progress(f"[{spec.name}] building {spec.tag} from {spec.dockerfile}")

    def emit(line: str) -> None:
        line = line.rstrip()
        if line:
            tail.append(line)
            progress(f"[{spec.name}] {line}")

    image_id = None
    pending = ""
    try:
        stream = client.api.build(
            path=str(ROOT),
            dockerfile=spec.dockerfile,
            tag=spec.tag,
            buildargs=buildargs,
            labels={"devops-paradise.image": spec.name, **labels},
            nocache=nocache,
            **_BUILD_OPTIONS,
        )
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                emit(pending)
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error") or "unknown error"
                raise ImageBuildError(spec.tag, detail.strip(), tail)
            if "stream" in chunk:
                lines = (pending + chunk["stream"]).split("\n")
                pending = lines.pop()
                for line in lines:
                    emit(line)
            elif "status" in chunk:
                emit(f"{chunk['status']} {chunk.get('progress', '')}")
            elif "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
        emit(pending)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise ImageBuildError(spec.tag, str(exc), tail) from exc
    if image_id is None:
        try:
            image_id = client.images.get(spec.tag).id
        except docker.errors.DockerException as exc:
            raise ImageBuildError(spec.tag, "the build ended without an image", tail) from exc
    size = client.images.get(spec.tag).attrs.get("Size", 0)
    progress(f"[{spec.name}] built {spec.tag} in {time.monotonic() - started:.0f}s ({size / 1e6:.0f} MB)")
    return image_id
