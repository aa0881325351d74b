"""What this host uses to reach its package registries, turned into image build args (bridge/host/images.py).

Builds must reach PyPI, the Debian mirror and the npm registry the way this host does, so the foundation
image (images/base) gets:

* the host's CA bundle, copied to ``images/certs/`` and trusted inside the image (TLS-intercepting proxies,
  private mirrors);
* the host's pip index settings (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_TRUSTED_HOST``,
  ``PIP_DEFAULT_TIMEOUT``, from the environment or pip's configuration files; local ``file://`` indexes
  and directories are left out, a build cannot see them);
* the host's apt proxy and a non-default Debian mirror (``APT_PROXY``, ``APT_MIRROR``), the npm registry when
  it is not the default one (``NPM_CONFIG_REGISTRY``);

and every build gets the usual ``*_PROXY`` variables (Docker's predefined build args, never stored in an
image). Every build arg is passed only when it has a value.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bridge.runtime.egress import proxy_environment

ROOT = Path(__file__).resolve().parents[2]
CERTS_DIR = ROOT / "images" / "certs"
HOST_BUNDLE_NAME = "host-ca-bundle.crt"
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"

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
    """The foundation's build args: pip, apt and npm inside the build reach their registries as this host does."""
    args: dict[str, str] = {}
    for key, value in pip_config().items():
        value = _remote_urls(value) if key.endswith("index-url") else value
        if value:
            args[PIP_SETTINGS[key]] = value
    args.update(apt_settings())
    registry = npm_registry()
    if registry:
        args["NPM_CONFIG_REGISTRY"] = registry
    args.update(proxy_build_args())
    return args


def proxy_build_args() -> dict[str, str]:
    """The host's ``*_PROXY`` variables: every build step that downloads (apt, pip, npm) needs them."""
    return proxy_environment()
