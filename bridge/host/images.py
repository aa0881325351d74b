"""Build the instance and bridge images with the Docker SDK (``devops-paradise images build``).

The build context is the repository root; the Dockerfiles are ``images/<name>/Dockerfile`` and take a
``BASE_IMAGE`` build arg: the official ``python:3.11-slim`` normally, or the registry-free Debian base
(``scripts/build-base-image.sh`` → ``devops-paradise/base:bookworm``) when no image registry is reachable.

Builds must reach PyPI and the Debian mirror the way this host does, so every build gets:

* the host's CA bundle, copied to ``images/certs/`` and trusted inside the image (TLS-intercepting proxies,
  private mirrors);
* the host's pip index settings (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_TRUSTED_HOST``,
  ``PIP_DEFAULT_TIMEOUT``, from the environment or pip's configuration files; local ``file://`` indexes
  and directories are left out, a build cannot see them);
* the host's apt proxy and a non-default Debian mirror (``APT_PROXY``, ``APT_MIRROR``), the npm registry when
  it is not the default one (``NPM_CONFIG_REGISTRY``) and the usual ``*_PROXY`` variables.

Every build arg is passed only when it has a value. Synchronous on purpose (call it in a worker thread from
async code); no aiohttp, no sqlmodel.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CERTS_DIR = ROOT / "images" / "certs"
HOST_BUNDLE_NAME = "host-ca-bundle.crt"

OFFICIAL_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = "devops-paradise/base:bookworm"
REGISTRY_PROBE_URL = "https://registry-1.docker.io/v2/"
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
TAIL_LINES = 30

CA_BUNDLE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, BSD
)
PIP_SETTINGS = {  # pip configuration key -> build arg
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "trusted-host": "PIP_TRUSTED_HOST",
    "default-timeout": "PIP_DEFAULT_TIMEOUT",
}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


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


# ---- what the host uses to reach its package registries -------------------------------------------


def host_ca_bundle() -> Path | None:
    """The CA bundle this host's tools trust (the env variables first, then the usual system paths)."""
    for variable in ("PARADISE_CA_BUNDLE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"):
        value = os.environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    for candidate in CA_BUNDLE_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def copy_host_ca_bundle(certs_dir: Path = CERTS_DIR) -> Path | None:
    """Copy the host's CA bundle into the build context (only when it changed, to keep the build cache)."""
    source = host_ca_bundle()
    if source is None:
        return None
    certs_dir.mkdir(parents=True, exist_ok=True)
    target = certs_dir / HOST_BUNDLE_NAME
    data = source.read_bytes()
    if not target.is_file() or target.read_bytes() != data:
        target.write_bytes(data)
    return target


def _remote_urls(value: str) -> str:
    """Keep only http(s) URLs from a whitespace-separated list: a build cannot see file:// or local paths."""
    return " ".join(url for url in value.split() if re.match(r"https?://", url))


def pip_config() -> dict[str, str]:
    """``pip config list`` merged over all configuration files and PIP_* variables: {key: value}."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    settings: dict[str, str] = {}
    for line in result.stdout.splitlines():  # e.g. global.index-url='https://…'  or  :env:.index-url='…'
        match = re.match(r"^[^.]*\.([a-z-]+)='(.*)'$", line.strip())
        if match and match.group(1) in PIP_SETTINGS:
            settings[match.group(1)] = match.group(2)
    for key, variable in PIP_SETTINGS.items():  # also when pip itself is missing from this environment
        if os.environ.get(variable):
            settings[key] = os.environ[variable]
    return settings


def apt_settings() -> dict[str, str]:
    """The apt proxy and, when it is not deb.debian.org, the Debian mirror this host's apt uses."""
    args: dict[str, str] = {}
    if shutil.which("apt-config"):
        try:
            dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            dump = ""
        match = re.search(r'^Acquire::https?::Proxy "([^"]+)";', dump, re.MULTILINE)
        if match and match.group(1).upper() not in ("DIRECT", "FALSE"):
            args["APT_PROXY"] = match.group(1)
    mirror = _host_debian_mirror()
    if mirror and mirror.rstrip("/") != DEFAULT_DEBIAN_MIRROR:
        args["APT_MIRROR"] = mirror.rstrip("/")
    return args


def _host_debian_mirror() -> str | None:
    parts = Path("/etc/apt/sources.list.d")
    sources = [*sorted(parts.glob("*.sources")), Path("/etc/apt/sources.list"), *sorted(parts.glob("*.list"))]
    pattern = re.compile(r"^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", re.MULTILINE)
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for uri in pattern.findall(text):
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return None


def npm_registry() -> str | None:
    """The npm registry when this host uses a non-default one (npm config, else NPM_CONFIG_REGISTRY)."""
    registry = os.environ.get("NPM_CONFIG_REGISTRY")
    if not registry and shutil.which("npm"):
        try:
            registry = subprocess.run(
                ["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            registry = None
    if registry and registry.rstrip("/") != DEFAULT_NPM_REGISTRY.rstrip("/"):
        return registry
    return None


def host_build_args() -> dict[str, str]:
    """Build args that let pip, apt and npm inside the build reach their registries as this host does."""
    args: dict[str, str] = {}
    for key, value in pip_config().items():
        value = _remote_urls(value) if key.endswith("index-url") else value
        if value:
            args[PIP_SETTINGS[key]] = value
    args.update(apt_settings())
    registry = npm_registry()
    if registry:
        args["NPM_CONFIG_REGISTRY"] = registry
    for variable in PROXY_VARIABLES:
        if os.environ.get(variable):
            args[variable] = os.environ[variable]
    return args


# ---- building -------------------------------------------------------------------------------------


def build_images(
    names: Iterable[str],
    *,
    base_image: str | None = None,
    progress: Callable[[str], None] = print,
    client: Any = None,
    nocache: bool = False,
) -> dict[str, str]:
    """Build the named images (keys of IMAGES) in order; stream each output line to ``progress``.

    Returns {name: image id}. Raises ImageBuildError naming the image and its last output lines.
    """
    names = list(names)
    unknown = [name for name in names if name not in IMAGES]
    if unknown:
        raise ImageBuildError(", ".join(unknown), f"unknown image name(s); known: {', '.join(IMAGES)}")
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
    buildargs = {"BASE_IMAGE": base, **host_build_args()}
    progress(f"base image {base}; build args: {', '.join(sorted(buildargs))}")
    if bundle is not None:
        progress(f"trusting the host CA bundle inside the images ({bundle.relative_to(ROOT)})")
    built: dict[str, str] = {}
    for name in names:
        built[name] = _build_one(IMAGES[name], client, buildargs, progress, nocache=nocache)
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
    spec: ImageSpec, client: Any, buildargs: dict[str, str], progress: Callable[[str], None], *, nocache: bool
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
            decode=True,
            rm=True,
            forcerm=True,
            pull=False,
            nocache=nocache,
            timeout=None,
            labels={"devops-paradise.image": spec.name, "devops-paradise.base-image": buildargs["BASE_IMAGE"]},
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
