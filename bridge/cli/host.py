"""``doctor``, ``images build``, ``stop`` and ``check``: the host-side subcommands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bridge.cli.common import AdminClient, CliError, bridge_url, client_name, emit, say
from bridge.host.doctor import doctor_report, doctor_text
from bridge.host.images import ImageBuildError, build_images
from bridge.mcp import client as mcp_client
from bridge.mcp.protocol import ACCEPT_STREAM
from bridge.models import InstanceView
from bridge.settings import BridgeSettings, load_settings

PID_FILE = "bridge.pid"
TOKEN_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def install_serena_now(settings: BridgeSettings, languages: str | None = None, progress: Callable[[str], None] = say,
                       problem: Callable[[str], None] = _to_stderr) -> None:
    """Serena, then the language packs of ``languages`` (comma-separated, ``all``, default: detected here);
    each step said to ``progress``, a failing step's output to ``problem`` (setup logs and shows both)."""
    from bridge.host.language_packs import install_packs
    from bridge.host.serena_install import SERENA_VERSION, SerenaInstallError, install_serena
    from instances.serena import languages as L

    try:
        install_serena(settings.serena_venv_path, version=settings.serena_version or SERENA_VERSION,
                       progress=progress)
    except SerenaInstallError as exc:
        problem(exc.detail)
        raise CliError(f"installing Serena failed at step '{exc.step}'") from None
    if languages == "all":
        names = [name for name, lang in L.LANGUAGES.items() if lang.pack]
    else:
        names = languages.split(",") if languages else L.detect(Path.cwd())
    try:
        problems = install_packs(settings.serena_venv_path, names, progress=progress)
    except L.LanguageError as exc:
        raise CliError(str(exc)) from None
    if problems:
        raise CliError("language packs not installed: " + "; ".join(problems))


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.install == "serena":
        install_serena_now(settings, args.languages)
        return 0
    report = doctor_report(settings, bridge_url())
    emit(args, report, doctor_text(report))
    return 0 if report["runtime"]["usable"] else 1


# ---- images ------------------------------------------------------------------------------------------


def cmd_images_build(args: argparse.Namespace) -> None:
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
    from bridge.runtime.process import ProcessRuntime

    if state.get("pid"):
        runtime = ProcessRuntime(Path(state.get("dir", ".")))
        if not (await runtime.poll(state)).running:  # gone, or its pid now belongs to another process
            return False
        await runtime.stop(state, grace=grace)
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


def stop_everything() -> list[str]:
    """Stop the bridge of this data dir and every instance it knows of; one line for each."""
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
    return lines


def cmd_stop(args: argparse.Namespace) -> None:
    lines = stop_everything()
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


def servers_to_check(admin: AdminClient, client_id: str, mcp_json: str | None) -> dict[str, Any]:
    if mcp_json:
        try:
            servers = json.loads(Path(mcp_json).read_text()).get("mcpServers") or {}
        except (OSError, ValueError, AttributeError) as exc:
            raise CliError(f"cannot read {mcp_json}: {exc}") from None
    else:
        servers = admin.mcp_config(client_id).model_dump(mode="json")["mcpServers"]
    mine = {k: v for k, v in servers.items() if f"/c/{client_id}/" in str(v.get("url", ""))}
    if not mine:
        raise CliError(f"no server of client {client_id} in {mcp_json or 'the bridge configuration'}")
    return mine


async def check_server(name: str, server: dict[str, Any], env: dict[str, str], timeout: float) -> str:
    """One line saying the server answered initialize + tools/list; CliError when the bridge turns us away."""
    url = expand(server["url"], env)
    headers = {key: expand(value, env) for key, value in (server.get("headers") or {}).items()}
    refused = _refusal(url, headers)
    if refused:
        raise CliError(f"{name}: {refused}")
    result = await mcp_client.check_server(url, headers, timeout=timeout)
    return f"{name}: initialize ok ({result.server}), tools/list: {result.tools} tools in {result.seconds:.1f}s"


def _refusal(url: str, headers: dict[str, str]) -> str | None:
    """Why the bridge turns a request away (401/403/404/503), in words; None when it would let it through."""
    try:
        resp = httpx.request("GET", url, headers={**headers, "Accept": ACCEPT_STREAM},
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


def check_client(client_id: str, *, mcp_json: str | None = None, token_file: str | None = None, timeout: float = 60,
                 progress: Callable[[str], None] | None = say) -> list[str]:
    """MCP initialize + tools/list on each server of the client (those of ``mcp_json``, else the bridge's),
    with the token of ``token_file`` (else DEVOPS_PARADISE_TOKEN); one line per server, each also said to
    ``progress`` with the instance's notes. CliError names what failed."""
    env = dict(os.environ)
    if token_file:
        try:
            env["DEVOPS_PARADISE_TOKEN"] = Path(token_file).expanduser().read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the token file {token_file} ({exc.strerror})") from None
    admin = AdminClient()
    results, failed = [], []
    instances = instance_states(admin, client_id)
    for name, server in servers_to_check(admin, client_id, mcp_json).items():
        state = instances.get(service_of(client_id, str(server.get("url", ""))))
        if state is not None and state.state == "failed":  # its MCP answer would only be a 503: say why instead
            failed.append(f"{name}: the instance has failed: {state.last_error or 'no reason recorded'}")
            continue
        try:
            results.append(asyncio.run(check_server(name, server, env, timeout)))
        except CliError:
            raise
        except Exception as exc:
            raise CliError(f"{name}: MCP initialize/tools/list failed ({exc.__class__.__name__}: {exc})") from None
        for line in [results[-1], *(f"{name}: note: {note}" for note in (state.notes if state else []))]:
            if progress is not None:
                progress(line)
    if failed:
        raise CliError("\n".join(failed))
    return results


def cmd_check(args: argparse.Namespace) -> None:
    results = check_client(args.name, mcp_json=args.mcp_json, token_file=args.token_file, timeout=args.timeout,
                           progress=None if args.json else say)
    if args.json:
        emit(args, {"ok": results}, "")


def instance_states(admin: AdminClient, client_id: str) -> dict[str, InstanceView]:
    """{service: instance view} from the bridge; empty when it cannot tell (the MCP checks still run)."""
    try:
        view = admin.client(client_id)
    except CliError:
        return {}
    return {i.service: i for i in view.instances}


def service_of(client_id: str, url: str) -> str:
    """The service of a bridge MCP URL ``.../c/CLIENT/SERVICE/mcp``."""
    return url.partition(f"/c/{client_id}/")[2].split("/", 1)[0]


def add_host_parsers(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check this machine: python, node, docker, images, Serena, bridge")
    doctor.add_argument("--install", choices=["serena"], help="install Serena (with progress) and exit")
    doctor.add_argument("--languages", help="with --install serena: language packs to install, comma-separated, "
                        "or all (default: the languages detected in the current directory)")
    doctor.set_defaults(func=cmd_doctor)

    images = sub.add_parser("images", help="container images").add_subparsers(dest="action", required=True)
    build = images.add_parser("build", help="build the instance images (and the bridge image on request)")
    build.add_argument("names", nargs="*", metavar="NAME", help="serena, quality, bridge (default: serena quality)")
    build.add_argument("--base-image", help="BASE_IMAGE build arg (default: python:3.11-slim or the local base)")
    build.set_defaults(func=cmd_images_build)

    stop = sub.add_parser("stop", help="stop the bridge (DATA_DIR/bridge.pid) and every instance; clients stay")
    stop.set_defaults(func=cmd_stop)

    check = sub.add_parser("check", help="MCP initialize + tools/list through the bridge, as Claude Code would")
    check.add_argument("name", type=client_name, help="client id")
    check.add_argument("--mcp-json", help="use the servers of this .mcp.json (default: ask the bridge)")
    check.add_argument("--token-file", help="read DEVOPS_PARADISE_TOKEN from this file")
    check.add_argument("--timeout", type=float, default=60, help="seconds per server")
    check.set_defaults(func=cmd_check)
