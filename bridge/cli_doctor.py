"""Host-side commands of ``devops-paradise``: ``doctor``, ``images build``, ``stop`` and ``check``.

Unlike the client commands they do not need a running bridge: they look at this machine (Python, Node.js,
the Docker engine and its images, the Serena virtualenv, the data dir) or at the bridge's own files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bridge.cli import DEFAULT_URL, CliError, emit
from bridge.settings import BridgeSettings, load_settings

PID_FILE = "bridge.pid"
MIN_PYTHON = (3, 11)
MIN_NODE_MAJOR = 14
TOKEN_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def say(line: str) -> None:
    print(line, flush=True)


# ---- doctor ------------------------------------------------------------------------------------------


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


def catalog_images(settings: BridgeSettings) -> list[str]:
    from bridge.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(settings.catalog)
    except CatalogError as exc:
        raise CliError(f"PARADISE_CATALOG: {exc}") from None
    return sorted({spec.image for spec in catalog.values() if spec.image})


def docker_report(images: list[str]) -> dict[str, Any]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        version = client.version().get("Version")
    except Exception as exc:  # no SDK, no socket, a dead DOCKER_HOST: all mean "no engine"
        return {"engine": False, "detail": f"no Docker engine answers ({exc.__class__.__name__})", "images": {}}
    try:
        found = {image: _image_exists(client, image) for image in images}
    finally:
        client.close()
    return {"engine": True, "detail": f"engine {version} answers", "images": found}


def _image_exists(client: Any, tag: str) -> bool:
    try:
        from bridge.images import image_exists
    except ImportError:  # a checkout without the image builder: ask the engine directly
        return bool(client.images.list(name=tag))
    return image_exists(tag, client)


def serena_report(settings: BridgeSettings) -> dict[str, Any]:
    from bridge.serena_install import SERENA_VERSION, serena_installed

    version = settings.serena_version or SERENA_VERSION
    venv = settings.serena_venv_path
    return {"installed": serena_installed(venv, version), "version": version, "venv": str(venv)}


def bridge_report(url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(url.rstrip("/") + "/healthz", timeout=3)
        health = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        health = None
    if not isinstance(health, dict) or health.get("status") != "ok":
        return {"url": url, "reachable": False}
    return {"url": url, "reachable": True, "runtime": health.get("runtime"), "clients": health.get("clients")}


def choose_runtime(setting: str, python: dict[str, Any], docker: dict[str, Any]) -> dict[str, Any]:
    missing = [image for image, ok in docker["images"].items() if not ok]
    docker_ok = docker["engine"] and not missing
    why_not = docker["detail"] if not docker["engine"] else f"images not built: {', '.join(missing)}"
    if setting not in ("auto", "docker", "process"):  # e.g. a cluster runtime: the bridge checks it at start-up
        return {"setting": setting, "chosen": setting, "usable": docker["engine"],
                "reason": "needs a Docker engine; the bridge checks the rest when it starts"}
    if setting == "docker" or (setting == "auto" and docker_ok):
        reason = "Docker engine answers and the images exist" if docker_ok else why_not
        return {"setting": setting, "chosen": "docker", "usable": docker_ok, "reason": reason}
    reason = "PARADISE_RUNTIME=process" if setting == "process" else f"no Docker runtime: {why_not}"
    if not python["ok"]:
        reason = f"Python {python['version']} is too old; 3.11 or newer is needed"
    return {"setting": setting, "chosen": "process", "usable": python["ok"], "reason": reason}


def doctor_report(settings: BridgeSettings) -> dict[str, Any]:
    python = python_report()
    docker = docker_report(catalog_images(settings))
    data_dir = settings.data_dir
    return {
        "python": python,
        "node": node_report(),
        "docker": docker,
        "serena": serena_report(settings),
        "data_dir": {"path": str(data_dir), "exists": data_dir.is_dir(),
                     "admin_token": (data_dir / "admin-token").is_file() or settings.admin_token is not None},
        "bridge": bridge_report(os.environ.get("PARADISE_URL", DEFAULT_URL)),
        "runtime": choose_runtime(settings.runtime, python, docker),
    }


def mark(ok: bool) -> str:
    return "ok  " if ok else "--  "


def doctor_text(report: dict[str, Any]) -> str:
    py, node, docker, serena = report["python"], report["node"], report["docker"], report["serena"]
    lines = [f"{mark(py['ok'])}python   {py['version']} ({py['executable']})",
             f"{mark(node['ok'])}node     {node.get('version') or node.get('note')}",
             f"{mark(docker['engine'])}docker   {docker['detail']}"]
    lines += [f"{mark(ok)}image    {image}{'' if ok else ' (not built: devops-paradise images build)'}"
              for image, ok in docker["images"].items()]
    state = "installed" if serena["installed"] else "not installed (devops-paradise doctor --install serena)"
    lines.append(f"{mark(serena['installed'])}serena   {serena['version']} {state} in {serena['venv']}")
    data, bridge, runtime = report["data_dir"], report["bridge"], report["runtime"]
    lines.append(f"{mark(data['exists'])}data     {data['path']}{'' if data['exists'] else ' (created on start)'}")
    where = f"runs at {bridge['url']} (runtime {bridge.get('runtime')}, {bridge.get('clients')} clients)"
    where = where if bridge["reachable"] else f"not running at {bridge['url']}"
    lines.append(f"{mark(bridge['reachable'])}bridge   {where}")
    verdict = "usable" if runtime["usable"] else "NOT usable"
    lines.append(f"\nruntime {runtime['chosen']} (PARADISE_RUNTIME={runtime['setting']}) is {verdict}: "
                 + runtime["reason"])
    return "\n".join(lines)


def install_serena_now(settings: BridgeSettings) -> None:
    from bridge.serena_install import SERENA_VERSION, SerenaInstallError, install_serena

    try:
        install_serena(settings.serena_venv_path, version=settings.serena_version or SERENA_VERSION, progress=say)
    except SerenaInstallError as exc:
        print(exc.detail, file=sys.stderr)
        raise CliError(f"installing Serena failed at step '{exc.step}'") from None


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.install == "serena":
        install_serena_now(settings)
        return 0
    report = doctor_report(settings)
    emit(args, report, doctor_text(report))
    return 0 if report["runtime"]["usable"] else 1


# ---- images ------------------------------------------------------------------------------------------


def cmd_images_build(args: argparse.Namespace) -> None:
    try:
        from bridge.images import ImageBuildError, build_images
    except ImportError as exc:
        raise CliError(f"image building is not available in this checkout (bridge.images: {exc})") from None
    started = time.monotonic()
    try:
        built = build_images(args.names or ["serena", "quality"], base_image=args.base_image, progress=say)
    except ImageBuildError as exc:
        print(str(exc), file=sys.stderr)
        raise CliError(f"building image {exc.image} failed") from None
    emit(args, built, f"built {', '.join(built)} in {time.monotonic() - started:.0f}s")


# ---- stop --------------------------------------------------------------------------------------------


def stop_bridge(settings: BridgeSettings, grace: float = 20) -> str:
    """Stop the bridge whose pid is in DATA_DIR/bridge.pid (TERM, then KILL); remove the pid file."""
    import psutil

    pid_file = settings.data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
    except (OSError, ValueError, psutil.Error):
        pid_file.unlink(missing_ok=True)
        return "bridge: not running"
    if "serve" not in cmdline or ("devops-paradise" not in cmdline and "bridge" not in cmdline):
        pid_file.unlink(missing_ok=True)
        return f"bridge: not running (stale pid file, pid {pid} is another program)"
    proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs([proc], timeout=grace)
    for rest in alive:
        with contextlib.suppress(psutil.Error):
            rest.kill()
    psutil.wait_procs(alive, timeout=5)
    pid_file.unlink(missing_ok=True)
    return f"bridge: stopped (pid {pid}{', killed after ' + str(grace) + 's' if alive else ''})"


def _instance_states(settings: BridgeSettings) -> list[tuple[str, dict[str, Any]]]:
    """(name, backend state) of every instance: the database's view plus the process runtime's state files."""
    from bridge import store
    from bridge.runtime.process import ProcessRuntime

    found: dict[str, tuple[str, dict[str, Any]]] = {}
    if settings.database_url or Path(settings.db_url.removeprefix("sqlite:///")).is_file():
        engine = store.make_engine(settings.db_url)
        with store.session(engine) as db:
            for row in store.list_instances(db):
                state = dict(row.backend_state or {})
                key = str(state.get("pid") or state.get("container_id") or f"{row.client_id}/{row.service}")
                found[key] = (f"{row.service} of {row.client_id}", state)
        engine.dispose()
    for item in asyncio.run(ProcessRuntime(settings.instances_dir).discover()):
        found.setdefault(str(item.state["pid"]), (f"{item.service} of {item.client_id}", item.state))
    return list(found.values())


async def _stop_one(state: dict[str, Any], grace: float) -> bool:
    from bridge.runtime.process import ProcessRuntime, _same_process

    if state.get("pid"):
        if _same_process(state["pid"], state.get("create_time", 0.0)) is None:
            return False
        await ProcessRuntime(Path(state.get("dir", "."))).stop(state, grace=grace)
        return True
    if state.get("container_id"):
        from bridge.runtime.docker import DockerRuntime

        runtime = DockerRuntime()
        try:
            if not (await runtime.poll(state)).running:
                return False
            await runtime.stop(state, grace=grace)
        finally:
            await runtime.close()
        return True
    return False


def cmd_stop(args: argparse.Namespace) -> None:
    settings = load_settings()
    lines = [stop_bridge(settings)]
    for name, state in _instance_states(settings):
        try:
            stopped = asyncio.run(_stop_one(state, settings.stop_grace))
        except Exception as exc:  # e.g. the Docker engine is gone: report, go on with the others
            lines.append(f"{name}: could not stop ({exc.__class__.__name__}: {exc})")
            continue
        if stopped:
            lines.append(f"{name}: stopped")
    emit(args, {"stopped": lines}, "\n".join(lines))


# ---- check -------------------------------------------------------------------------------------------


def expand(value: str, env: dict[str, str]) -> str:
    """``${VAR}`` and ``${VAR:-default}`` the way Claude Code expands them in .mcp.json."""
    def one(match: re.Match[str]) -> str:
        if match.group(1) in env:
            return env[match.group(1)]
        if match.group(2) is not None:
            return match.group(2)
        raise CliError(f"{match.group(1)} is not set (the configuration uses ${{{match.group(1)}}})")

    return TOKEN_PLACEHOLDER.sub(one, value)


def servers_to_check(args: argparse.Namespace) -> dict[str, Any]:
    from bridge.cli import call

    if args.mcp_json:
        try:
            servers = json.loads(Path(args.mcp_json).read_text()).get("mcpServers") or {}
        except (OSError, ValueError, AttributeError) as exc:
            raise CliError(f"cannot read {args.mcp_json}: {exc}") from None
    else:
        servers = call("GET", f"/clients/{args.name}/mcp-config")["mcpServers"]
    mine = {k: v for k, v in servers.items() if f"/c/{args.name}/" in str(v.get("url", ""))}
    if not mine:
        raise CliError(f"no server of client {args.name} in {args.mcp_json or 'the bridge configuration'}")
    return mine


async def check_server(name: str, server: dict[str, Any], env: dict[str, str], timeout: float) -> str:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    url = expand(server["url"], env)
    headers = {key: expand(value, env) for key, value in (server.get("headers") or {}).items()}
    refused = _refusal(url, headers)
    if refused:
        raise CliError(f"{name}: {refused}")
    started = time.monotonic()
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=timeout)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = (await asyncio.wait_for(client.list_tools(), timeout)).tools
        info = client.server_info
    who = f"{info.name} {info.version}" if info else "server"
    return f"{name}: initialize ok ({who}), tools/list: {len(tools)} tools in {time.monotonic() - started:.1f}s"


def _refusal(url: str, headers: dict[str, str]) -> str | None:
    """Why the bridge turns a request away (401/403/404/503), in words; None when it would let it through."""
    try:
        resp = httpx.request("GET", url, headers={**headers, "Accept": "text/event-stream"},
                             timeout=httpx.Timeout(10, read=2))
    except httpx.ReadTimeout:
        return None  # an open event stream: the bridge let us through
    except httpx.TransportError as exc:
        return f"cannot reach {url} ({exc.__class__.__name__})"
    with contextlib.suppress(ValueError, KeyError, TypeError):
        message = resp.json()["error"]["message"]
        if resp.status_code == 401:
            return f"the bridge refused the token ({message})"
        if resp.status_code in (403, 404, 503):
            return f"{resp.status_code}: {message}"
    return None


def cmd_check(args: argparse.Namespace) -> None:
    env = dict(os.environ)
    if args.token_file:
        try:
            env["DEVOPS_PARADISE_TOKEN"] = Path(args.token_file).expanduser().read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the token file {args.token_file} ({exc.strerror})") from None
    results = []
    for name, server in servers_to_check(args).items():
        try:
            results.append(asyncio.run(check_server(name, server, env, args.timeout)))
        except CliError:
            raise
        except Exception as exc:
            raise CliError(f"{name}: MCP initialize/tools/list failed ({exc.__class__.__name__}: {exc})") from None
        if not args.json:
            say(results[-1])
    if args.json:
        emit(args, {"ok": results}, "")


# ---- parsers -----------------------------------------------------------------------------------------


def add_doctor_parsers(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check this machine: python, node, docker, images, Serena, bridge")
    doctor.add_argument("--install", choices=["serena"], help="install Serena (with progress) and exit")
    doctor.set_defaults(func=cmd_doctor)

    images = sub.add_parser("images", help="container images").add_subparsers(dest="action", required=True)
    build = images.add_parser("build", help="build the instance images (and the bridge image on request)")
    build.add_argument("names", nargs="*", metavar="NAME", help="serena, quality, bridge (default: serena quality)")
    build.add_argument("--base-image", help="BASE_IMAGE build arg (default: python:3.11-slim or the local base)")
    build.set_defaults(func=cmd_images_build)

    stop = sub.add_parser("stop", help="stop the bridge (DATA_DIR/bridge.pid) and every instance; clients stay")
    stop.set_defaults(func=cmd_stop)

    check = sub.add_parser("check", help="MCP initialize + tools/list through the bridge, as Claude Code would")
    check.add_argument("name", help="client id")
    check.add_argument("--mcp-json", help="use the servers of this .mcp.json (default: ask the bridge)")
    check.add_argument("--token-file", help="read DEVOPS_PARADISE_TOKEN from this file")
    check.add_argument("--timeout", type=float, default=60, help="seconds per server")
    check.set_defaults(func=cmd_check)
