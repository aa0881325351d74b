"""What the benchmarks share: a real bridge per part, the admin API, MCP exchanges, sampling, output; and
the command line of the two that time the quality instance on a generated test suite (suite_arguments).

Each part (death, wake, scale, streams) runs its own real bridge (``python -m bridge serve``, process
runtime, loopback ports of its own) whose services are the fixture MCP server of the tests (the official
MCP SDK, ``echo`` and the old HTTP+SSE ``legacy``). Every request goes to 127.0.0.1; every loop is bounded.

Bridge and pool ports are taken below the kernel's ephemeral port range, so that none of the thousands
of outgoing connections made here can grab a pool port before an instance binds it. The open-file limit
is raised to its hard limit (the bridge, a child, inherits it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import httpx
import psutil

from bridge.mcp.client import McpSession, McpStatusError, McpToolError, ProbeFailed
from bridge.runtime.base import port_is_free
from tests.helpers import BridgeProcess, fixture_catalog

MIB = 2**20
FIGURES: dict[str, Any] = {}  # every figure of the run, printed as one JSON line at the end
HIDDEN = {"PARADISE_ADMIN_TOKEN", "PARADISE_DATA_DIR", "PARADISE_CATALOG", "PARADISE_PORT", "PARADISE_WORKSPACE_ROOTS"}


# ---- bridges -----------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, nofile: int) -> None:
        self.args = args
        self.nofile = nofile
        self.work = Path(tempfile.mkdtemp(prefix="paradise-bench-health-"))
        self.catalog = fixture_catalog(self.work / "catalog.toml")
        self.workspace = self.work / "ws"
        self.workspace.mkdir()

    @contextlib.contextmanager
    def bridge(self, name: str, env: dict[str, str], pool_size: int = 30) -> Iterator[BridgeProcess]:
        # The workspaces are temporary directories: the bridge allows only those under WORKSPACE_ROOTS.
        env = {"PARADISE_CATALOG": str(self.catalog), "PARADISE_LOG_LEVEL": "WARNING", **env}
        env["PARADISE_WORKSPACE_ROOTS"] = str(self.work)
        env.setdefault("PARADISE_SHARED_WORKSPACES", "true")  # every client works on the one generated workspace
        bridge = BridgeProcess(self.work / name, env=env, pool_size=pool_size)
        first = quiet_block(pool_size + 1)  # helpers' free_block may land in the ephemeral range
        bridge.port, bridge.pool = first, range(first + 1, first + 1 + pool_size)
        bridge.env |= {"PARADISE_PORT": str(first), "PARADISE_PORT_RANGE": f"{first + 1}-{first + pool_size}"}
        shown = {k: v for k, v in bridge.env.items() if k.startswith("PARADISE_") and k not in HIDDEN}
        print(f"\n== {name}: bridge settings " + " ".join(f"{k[9:]}={v}" for k, v in sorted(shown.items())))
        try:
            bridge.start(timeout=30)
            yield bridge
        finally:
            stop_bridge(bridge)
            report_log(name, bridge)


def quiet_block(size: int) -> int:
    """A first port of ``size`` free ports below the kernel's ephemeral range.

    Ports in that range are handed out to outgoing connections (thousands here); one landing on a pool
    port between the bridge's check and the instance's bind fails that instance's start.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        first = random.randrange(10000, max(10001, low - size - 1))
        if all(port_is_free(p) for p in range(first, first + size + 1)):
            return first
    raise RuntimeError("no free block of ports below the ephemeral range on 127.0.0.1")


def stop_bridge(bridge: BridgeProcess) -> None:
    """SIGTERM the bridge (instances outlive it by design), then end every instance it started."""
    with contextlib.suppress(Exception):
        bridge.kill(signal.SIGTERM)
    if bridge.proc and bridge.proc.poll() is None:
        bridge.kill(signal.SIGKILL)
    for label in bridge.data_dir.glob("instances/*/*/runtime.json"):
        with contextlib.suppress(Exception):
            state = json.loads(label.read_text())
            proc = psutil.Process(state["pid"])
            if abs(proc.create_time() - state["create_time"]) < 0.05:
                os.killpg(proc.pid, signal.SIGKILL)


def report_log(name: str, bridge: BridgeProcess) -> None:
    """Warnings, errors and tracebacks of the bridge log, grouped with numbers masked."""
    if not bridge.log.exists():
        return
    groups: Counter[str] = Counter()
    tracebacks = 0
    for line in bridge.log.read_text(errors="replace").splitlines():
        tracebacks += line.startswith("Traceback")
        match = re.match(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)$", line)
        if match:
            text = re.sub(r"\d+(\.\d+)?", "N", match.group(3))
            text = re.sub(r"\[[a-z0-9-]+/", "[<client>/", text)
            groups[f"{match.group(1)} {match.group(2)}: {text[:110]}"] += 1
    FIGURES.setdefault("log", {})[name] = {"tracebacks": tracebacks, "groups": dict(groups)}
    print(f"-- {name}: bridge log: {sum(groups.values())} warning/error lines, {tracebacks} tracebacks")
    for text, count in groups.most_common(8):
        print(f"   {count:>5} x {text}")


# ---- the admin API -----------------------------------------------------------------------------------------


def admin(bridge: BridgeProcess, timeout: float = 120) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {bridge.admin_token}"}
    return httpx.AsyncClient(base_url=bridge.url + "/api/v1", headers=headers, timeout=timeout)


async def wait_state(api: httpx.AsyncClient, client: str, service: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        body = (await api.get(f"/clients/{client}")).json()
        state = next(i["state"] for i in body["instances"] if i["service"] == service)
        if state in states:
            return state
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{client}/{service} still {state} after {timeout}s (wanted {states})")


async def register(api: httpx.AsyncClient, client: str, workspace: Path, service: str, wait: float = 60) -> str:
    body = {"client_id": client, "workspace": str(workspace), "services": [service]}
    resp = await api.post("/clients", params={"wait": wait}, json=body)
    if resp.status_code != 201:
        raise RuntimeError(f"register {client}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp.json()["token"]


async def register_many(
    api: httpx.AsyncClient, names: Sequence[str], workspace: Path, service: str, concurrency: int, wait: float
) -> dict[str, str]:
    """Register every client of ``names`` (one ``service`` each), at most ``concurrency`` at a time: on two
    cores, starting dozens of instances at once would make each wait past its readiness timeout."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> str:
        async with gate:
            return await register(api, name, workspace, service, wait=wait)

    tokens = await asyncio.gather(*(one(name) for name in names))
    return dict(zip(names, tokens, strict=True))


# ---- MCP through the bridge (bridge.mcp.client) ----------------------------------------------------------


class ExchangeFailed(Exception):
    """An MCP exchange through the bridge failed; ``what`` is short enough to count alike failures."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def mcp_http(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


def bridge_session(http: aiohttp.ClientSession, url: str, token: str) -> McpSession:
    return McpSession(http, url, {"Authorization": f"Bearer {token}"}, client_name="bench-health")


@contextlib.contextmanager
def counted_failure() -> Iterator[None]:
    """Any failure of an exchange as ExchangeFailed: ``HTTP 503``, the error class, or the server's words."""
    try:
        yield
    except McpStatusError as exc:
        raise ExchangeFailed(f"HTTP {exc.status}") from None
    except (McpToolError, ProbeFailed) as exc:
        raise ExchangeFailed(str(exc)[:80]) from None
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ExchangeFailed(exc.__class__.__name__) from None


async def mcp_exchange(http: aiohttp.ClientSession, url: str, token: str) -> float:
    """initialize, initialized, tools/call echo, DELETE; returns seconds to the initialize answer."""
    session = bridge_session(http, url, token)
    began = time.perf_counter()
    try:
        with counted_failure():
            await session.initialize()
            first = time.perf_counter() - began
            await session.notify("notifications/initialized")
            text = await session.call_tool("echo", {"text": "ok"})
    finally:
        await session.close()
    if text != "ok":
        raise ExchangeFailed(f"unexpected answer {text[:100]!r}")
    return first


# ---- figures ---------------------------------------------------------------------------------------------


def rss(pid: int, tree: bool = False) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)] if tree else [proc]
        return sum(p.memory_info().rss for p in procs)
    except psutil.Error:
        return 0


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def sample_bridge(
    pid: int, seconds: float, load: Callable[[int], Awaitable[None]] | None = None
) -> dict[str, float]:
    """CPU (% of one core) and RSS of the bridge over ``seconds``, while ``load(tick)`` runs once a second."""
    proc = psutil.Process(pid)
    cpu0, wall0, peak = cpu_seconds(proc), time.perf_counter(), 0
    for tick in range(int(seconds)):
        tick_began = time.perf_counter()
        if load is not None:
            await load(tick)
        peak = max(peak, proc.memory_info().rss)
        await asyncio.sleep(max(0.0, 1 - (time.perf_counter() - tick_began)))
    cpu = (cpu_seconds(proc) - cpu0) / (time.perf_counter() - wall0) * 100
    return {"cpu_pct": cpu, "rss_mib": proc.memory_info().rss / MIB, "rss_peak_mib": peak / MIB}


def pct(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


def clean(value: Any) -> Any:
    """Rounded floats, None for NaN: a JSON line any parser reads."""
    if isinstance(value, float):
        return None if value != value else round(value, 4)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


# ---- running parts ---------------------------------------------------------------------------------------


def raise_open_files() -> int:
    """Open-file limit up to the hard limit; the bridge (a child) inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(parts: Sequence[ModuleType], *, title: str, description: str, argv: list[str] | None = None) -> None:
    """Parse the options of ``parts`` (modules with NAME, add_arguments, run), run them, print the figures."""
    names = [part.NAME for part in parts]
    parser = argparse.ArgumentParser(prog=title, description=description)
    if len(parts) > 1:
        parser.add_argument("--only", default=",".join(names), help=f"parts to run: {','.join(names)}")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of death and wake")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    for part in parts:
        part.add_arguments(parser)
    args = parser.parse_args(argv)
    wanted = [p.strip() for p in getattr(args, "only", ",".join(names)).split(",") if p.strip()]
    unknown = [p for p in wanted if p not in names]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {', '.join(names)}")
    nofile = raise_open_files()
    memory = psutil.virtual_memory().total / 2**30
    print(
        f"{title}: {os.cpu_count()} CPUs, {memory:.0f} GiB RAM, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; open-file limit {nofile}; parts: {', '.join(wanted)}"
    )
    FIGURES["machine"] = {"cpus": os.cpu_count(), "ram_gib": round(memory, 1), "nofile": nofile}
    bench = Bench(args, nofile)
    began = time.perf_counter()
    try:
        for part in parts:
            if part.NAME in wanted:
                asyncio.run(part.run(bench))
    finally:
        if args.keep:
            print(f"\nkept: {bench.work}")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    FIGURES["total_s"] = round(time.perf_counter() - began, 1)
    print(f"\n{title}: done in {FIGURES['total_s']:.0f} s")
    print(json.dumps(clean(FIGURES), default=str))


def suite_arguments(doc: str, *, modules: int, tests_per_module: int, test_cost_ms: int) -> argparse.ArgumentParser:
    """The options of a benchmark on a generated suite of --modules x --tests-per-module tests, each costing
    about --test-cost-ms, timed --repeat times; --keep keeps the generated workspace. The caller adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--modules", type=int, default=modules)
    parser.add_argument("--tests-per-module", type=int, default=tests_per_module)
    parser.add_argument("--test-cost-ms", type=int, default=test_cost_ms)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate here and keep it (default: a temp dir, removed)")
    return parser
