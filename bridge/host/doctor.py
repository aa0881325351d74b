"""``doctor``: what this machine has for the bridge (Python, Node, Docker and images, Serena, the bridge itself)
and which runtime the bridge would choose. Pure reports; the CLI renders them (cli/host.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bridge.host.images import image_exists
from bridge.settings import BridgeSettings, SettingsError
from bridge.storage import disk_problem

MIN_PYTHON = (3, 11)
MIN_NODE_MAJOR = 14
# The JS quality toolchain (instances/quality/node, pinned): the command each tool is run by, in report order
JS_TOOLS = ("node", "npm", "jest", "vitest", "eslint", "tsc", "prettier", "playwright", "newman", "lighthouse")
CHECKOUT_QUALITY_NODE_DIR = Path(__file__).resolve().parents[2] / "instances" / "quality" / "node"


def python_report() -> dict[str, Any]:
    version = ".".join(map(str, sys.version_info[:3]))
    return {"ok": sys.version_info >= MIN_PYTHON, "version": version, "executable": sys.executable}


def node_report() -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        return {"ok": False, "version": None, "note": "not found; Serena's pyright uses the Node.js wheel from PyPI"}
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=15).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    match = re.match(r"v?(\d+)\.", version)
    return {"ok": bool(match) and int(match.group(1)) >= MIN_NODE_MAJOR, "version": version or None, "path": node}


def js_tools_report() -> dict[str, Any]:
    """Each JS quality tool's version, found as the quality instance finds it: in $PARADISE_QUALITY_NODE_DIR
    (the image's /opt/quality-node) or this checkout's instances/quality/node, then on PATH. The toolchain's
    .bin comes first on PATH while it runs, so its tools use its own Node (22), not an older system one."""
    node_dir = Path(os.environ.get("PARADISE_QUALITY_NODE_DIR") or CHECKOUT_QUALITY_NODE_DIR)
    bin_dir = node_dir / "node_modules" / ".bin"
    search_path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]) if bin_dir.is_dir() else None

    def version_of(tool: str) -> dict[str, Any]:
        path = shutil.which(tool, path=search_path)
        if path is None:
            return {"ok": False, "version": None, "path": None}
        try:
            result = subprocess.run(  # a fixed tool name resolved to a file, no shell
                [path, "--version"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                env={**os.environ, "PATH": search_path or os.environ.get("PATH", ""), "NO_UPDATE_NOTIFIER": "1"},
            )
            match = re.search(r"\d+\.\d+\.\d+\S*", result.stdout)
        except (OSError, subprocess.TimeoutExpired):
            match = None
        return {"ok": match is not None, "version": match.group(0) if match else None, "path": path}

    with ThreadPoolExecutor(max_workers=4) as pool:  # ~0.5 s each, mostly Node start-up
        tools = dict(zip(JS_TOOLS, pool.map(version_of, JS_TOOLS), strict=True))
    return {"dir": str(node_dir) if bin_dir.is_dir() else None, "tools": tools}


def catalog_images(settings: BridgeSettings) -> list[str]:
    from bridge.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(settings.catalog)
    except CatalogError as exc:
        raise SettingsError(f"PARADISE_CATALOG: {exc}") from None
    return sorted({spec.image for spec in catalog.values() if spec.image})


def docker_report(images: list[str]) -> dict[str, Any]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        version = client.version().get("Version")
    except Exception as exc:  # no SDK, no socket, a dead DOCKER_HOST: all mean "no engine"
        return {"engine": False, "detail": f"no Docker engine answers ({exc.__class__.__name__})", "images": {}}
    try:
        found = {image: image_exists(image, client) for image in images}
    finally:
        client.close()
    return {"engine": True, "detail": f"engine {version} answers", "images": found}


def serena_report(settings: BridgeSettings) -> dict[str, Any]:
    from bridge.host.serena_install import SERENA_VERSION, serena_installed

    version = settings.serena_version or SERENA_VERSION
    venv = settings.serena_venv_path
    return {"installed": serena_installed(venv, version), "version": version, "venv": str(venv)}


def language_report(settings: BridgeSettings) -> list[dict[str, Any]]:
    """Serena's languages: server, pinned version, installed or missing, how to add it."""
    from bridge.host.language_packs import language_table

    return language_table(settings.serena_venv_path, settings.serena_language_servers)


def bridge_report(url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(url.rstrip("/") + "/healthz", timeout=3)
        health = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        health = None
    if not isinstance(health, dict) or health.get("status") != "ok":
        return {"url": url, "reachable": False}
    return {"url": url, "reachable": True, "runtime": health.get("runtime"), "clients": health.get("clients")}


def choose_runtime(
    setting: str, python: dict[str, Any], docker: dict[str, Any], *, allow_unsandboxed: bool = False
) -> dict[str, Any]:
    """The bridge's own selection table (bridge/runtime/selection.py) over this report's facts; the dict has
    setting, chosen, usable, reason, sandboxed (process runtime) and warning (said loudly when unsandboxed)."""
    from bridge.runtime.sandbox import bwrap_usable
    from bridge.runtime.selection import MachineFacts
    from bridge.runtime.selection import choose_runtime as choose

    swarm: dict[str, Any] = {}
    if setting == "swarm":
        from bridge.runtime.engine import probe_engine

        probe = probe_engine()
        swarm = {"swarm_usable": probe.swarm_usable, "swarm_detail": probe.swarm_detail}
    sandbox_usable, sandbox_detail = bwrap_usable()
    facts = MachineFacts(
        engine_answers=bool(docker["engine"]),
        engine_detail=docker["detail"],
        missing_images=[image for image, ok in docker["images"].items() if not ok],
        python_ok=bool(python["ok"]),
        python_version=python["version"],
        sandbox_usable=sandbox_usable,
        sandbox_detail=sandbox_detail,
        allow_unsandboxed=allow_unsandboxed,
        **swarm,
    )
    return choose(setting, facts).as_dict()


def doctor_report(settings: BridgeSettings, url: str) -> dict[str, Any]:
    python = python_report()
    docker = docker_report(catalog_images(settings))
    return {
        "python": python,
        "node": node_report(),
        "js_tools": js_tools_report(),
        "docker": docker,
        "serena": serena_report(settings),
        "languages": language_report(settings),
        "data_dir": data_dir_report(settings),
        "bridge": bridge_report(url),
        "runtime": choose_runtime(settings.runtime, python, docker, allow_unsandboxed=settings.allow_unsandboxed),
        "isolation": isolation_report(settings),
    }


def isolation_report(settings: BridgeSettings) -> dict[str, Any]:
    """How the process runtime bounds a tenant here: who its sandboxes run as, and by what its limits hold."""
    root = os.geteuid() == 0
    who = (f"per-client unprivileged uids {settings.sandbox_uids} (PARADISE_SANDBOX_UIDS), never root"
           if root else f"the bridge's own uid {os.getuid()} (an unprivileged user namespace)")
    limits = (f"rlimits, not cgroups: {settings.instance_pids} processes (RLIMIT_NPROC), {settings.instance_memory} "
              f"per process (RLIMIT_DATA); home a {settings.instance_disk} tmpfs; log 8 MiB per launch; "
              "CPU niceness 10, no quota")
    return {"runs_as": who, "limits": limits, "network": "own network namespace, reached over instance.sock"}


def data_dir_report(settings: BridgeSettings) -> dict[str, Any]:
    """The data dir: there or not, its admin token, and whether its disk can take writes (``disk`` says why not)."""
    data_dir = settings.data_dir
    return {"path": str(data_dir), "exists": data_dir.is_dir(), "disk": disk_problem(data_dir),
            "admin_token": (data_dir / "admin-token").is_file() or settings.admin_token is not None}


def data_dir_lines(data: dict[str, Any]) -> list[str]:
    lines = [f"{mark(data['exists'])}data     {data['path']}{'' if data['exists'] else ' (created on start)'}"]
    if data.get("disk"):
        lines.append(f"{mark(False)}disk     {data['disk']}: registrations, rotations and restarts answer 507")
    return lines


def mark(ok: bool) -> str:
    return "ok  " if ok else "--  "


def doctor_text(report: dict[str, Any]) -> str:
    py, node, docker, serena = report["python"], report["node"], report["docker"], report["serena"]
    lines = [f"{mark(py['ok'])}python   {py['version']} ({py['executable']})",
             f"{mark(node['ok'])}node     {node.get('version') or node.get('note')}",
             f"{mark(docker['engine'])}docker   {docker['detail']}"]
    lines += [f"{mark(ok)}image    {image}{'' if ok else ' (not built: devops-paradise images build)'}"
              for image, ok in docker["images"].items()]
    js_dir = report["js_tools"]["dir"]
    for tool, found in report["js_tools"]["tools"].items():
        shown = f"{found['version']} ({found['path']})" if found["ok"] else "not found"
        lines.append(f"{mark(found['ok'])}{'js/' + tool:<13} {shown}")
    if js_dir is None:
        lines.append(f"    the JS quality toolchain is not installed: sh {CHECKOUT_QUALITY_NODE_DIR}/install.sh")
    state = "installed" if serena["installed"] else "not installed (devops-paradise doctor --install serena)"
    lines.append(f"{mark(serena['installed'])}serena   {serena['version']} {state} in {serena['venv']}")
    for row in report.get("languages", []):
        shown = f"{row['version']} ({row['server']})" if row["installed"] else f"missing: {row['how']}"
        lines.append(f"{mark(bool(row['installed']))}{'lang/' + str(row['language']):<16} {shown}")
    data, bridge, runtime = report["data_dir"], report["bridge"], report["runtime"]
    lines += data_dir_lines(data)
    where = f"runs at {bridge['url']} (runtime {bridge.get('runtime')}, {bridge.get('clients')} clients)"
    where = where if bridge["reachable"] else f"not running at {bridge['url']}"
    lines.append(f"{mark(bridge['reachable'])}bridge   {where}")
    if isolation := report.get("isolation"):
        lines.append(f"{mark(True)}sandbox  runs as {isolation['runs_as']}; {isolation['network']}")
        lines.append(f"{mark(True)}limits   {isolation['limits']}")
    verdict = "usable" if runtime["usable"] else "NOT usable"
    lines.append(f"\nruntime {runtime['chosen']} (PARADISE_RUNTIME={runtime['setting']}) is {verdict}: "
                 + runtime["reason"])
    return "\n".join(lines)
