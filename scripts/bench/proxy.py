"""Proxy benchmark: a minimal MCP backend direct, through a bare aiohttp reverse proxy, and through the bridge.

    python -m scripts.bench.proxy [--seconds 5] [--rounds 3] [--connections 1,32] [--unix]

``--unix`` adds a second bridge with bubblewrap hidden from it, whose instance is reached over TCP as before
the sandbox had a network of its own, so the Unix socket (and the sandbox's relay) is measured next to it.

Besides throughput and latency it reports the CPU time each proxy process spent per request (from
/proc): on a shared VM a busy neighbour moves throughput a lot and that figure little.

Needs ``wrk`` (Debian: apt-get install wrk). Everything listens on 127.0.0.1. Targets are measured
interleaved (round by round) so that machine noise hits all three alike; the median round is reported.
Each request is an MCP ``tools/call`` POST with a JSON response. The bare proxy and both backends run on
the same event loop as the bridge (uvloop where installed; the report names it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bridge import eventloop
from bridge.mcp.protocol import ACCEPT_BOTH
from bridge.settings import BridgeSettings
from tests.helpers import BridgeProcess, free_block

ROOT = Path(__file__).resolve().parents[2]
BACKEND = Path(__file__).resolve().with_name("backend.py")  # run as a file: the bridge starts it too

BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"x": 1}}}
LUA = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "%s"
%s
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_port(url: str) -> None:
    for _ in range(100):
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    requests, duration_us, p50, p99, errors = (int(v) for v in line.split()[1:])
    return {
        "rps": requests / (duration_us / 1e6),
        "requests": requests,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": errors,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(url: str, script: Path, connections: int, seconds: float, pid: int | None) -> dict[str, float]:
    """One wrk run, with the CPU time the proxy in front (pid) spent per request: a figure the VM's
    noise moves far less than throughput, since a busy neighbour slows the clock, not the work."""
    before = cpu_seconds(pid) if pid else 0.0
    result = wrk(url, script, connections, seconds)
    if pid:
        result["cpu_us"] = (cpu_seconds(pid) - before) / max(result["requests"], 1) * 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,32")
    parser.add_argument("--unix", action="store_true", help="also a bridge whose instance is reached over TCP "
                        "(unsandboxed), next to the default one (sandboxed: over its Unix socket)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_proxy: needs wrk (apt-get install wrk)")
    conns = [int(c) for c in args.connections.split(",")]
    work = Path(tempfile.mkdtemp(prefix="paradise-bench-"))
    first = free_block(3)
    backend_port, bare_port = first, first + 1
    procs = [
        start([str(BACKEND), "backend", "--port", str(backend_port)]),
        start(
            [str(BACKEND), "bare", "--port", str(bare_port), "--upstream", f"127.0.0.1:{backend_port}"]
        ),
    ]
    catalog = work / "catalog.toml"
    catalog.write_text(
        f'[services.bench]\ncommand = ["{sys.executable}", "{BACKEND}", "backend", '
        f'"--port", "{{port}}"]\n'
    )
    env = {"PARADISE_CATALOG": str(catalog), "PARADISE_LOG_LEVEL": "WARNING", "PARADISE_WORKSPACE_ROOTS": str(work)}
    # The bridge as it runs by default: the test harness probes every 0.5 s, which is work a user's bridge
    # does ten times less often and which would land in the measurement.
    env["PARADISE_PROBE_INTERVAL"] = str(BridgeSettings.model_fields["probe_interval"].default)
    bridge = BridgeProcess(work / "data", env=env, pool_size=4)
    # The same bridge with bubblewrap out of its sight: the process runtime unsandboxed, its instance
    # reached over TCP on 127.0.0.1 as before issue 22; the sandboxed one goes through instance.sock.
    tcp_env = {**env, "PATH": "/nonexistent", "PARADISE_ALLOW_UNSANDBOXED": "true"}
    bridge_tcp = BridgeProcess(work / "data-tcp", env=tcp_env, pool_size=4) if args.unix else None
    try:
        bridge.start()
        workspace = work / "ws"  # beside the data dir, not around it: the bridge refuses overlaps
        workspace.mkdir()
        token = bridge.register("bench", workspace, ["bench"])["token"]
        targets = {
            "direct": (f"http://127.0.0.1:{backend_port}/mcp", ""),
            "bare-proxy": (f"http://127.0.0.1:{bare_port}/mcp", ""),
            "bridge": (bridge.mcp_url("bench", "bench"), f'wrk.headers["Authorization"] = "Bearer {token}"'),
        }
        pids = {"direct": None, "bare-proxy": procs[1].pid, "bridge": bridge.proc.pid if bridge.proc else None}
        if bridge_tcp is not None:
            bridge_tcp.start()
            tcp_token = bridge_tcp.register("bench", workspace, ["bench"])["token"]
            auth = f'wrk.headers["Authorization"] = "Bearer {tcp_token}"'
            targets["bridge-tcp"] = (bridge_tcp.mcp_url("bench", "bench"), auth)
            pids["bridge-tcp"] = bridge_tcp.proc.pid if bridge_tcp.proc else None
        scripts = {}
        for name, (url, extra) in targets.items():
            wait_port(url) if name != "bridge" else None
            scripts[name] = work / f"{name}.lua"
            scripts[name].write_text(LUA % (json.dumps(BODY), ACCEPT_BOTH, extra))
            wrk(url, scripts[name], 4, 1)  # warm-up: connections, pools, caches
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for c in conns:
                for name, (url, _) in targets.items():
                    run = measured(url, scripts[name], c, args.seconds, pids[name])
                    results.setdefault((name, c), []).append(run)
        report(results, conns, args)
    finally:
        with_suppress_delete(bridge)
        bridge.kill(signal.SIGTERM)
        if bridge_tcp is not None:
            with_suppress_delete(bridge_tcp)
            bridge_tcp.kill(signal.SIGTERM)
        for proc in procs:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def with_suppress_delete(bridge: BridgeProcess) -> None:
    try:
        bridge.api("DELETE", "/clients/bench")
    except Exception as exc:
        print(f"(could not delete the bench client: {exc})", file=sys.stderr)


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(results: dict[tuple[str, int], list[dict[str, float]]], conns: list[int], args: argparse.Namespace) -> None:
    print(
        f"\nbench_proxy: {args.rounds} interleaved rounds x {args.seconds:g}s per target; median round; "
        f"{os.cpu_count()} CPUs; {eventloop.loop_name()} event loop everywhere; MCP tools/call POST, JSON response\n"
    )
    print(f"{'target':<12}{'conns':>6}{'rps':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'proxy CPU us/req':>18}")
    for c in conns:
        for name in (n for n in ("direct", "bare-proxy", "bridge", "bridge-tcp") if (n, c) in results):
            runs = results[(name, c)]
            cpu = f"{median(runs, 'cpu_us'):>18.1f}" if "cpu_us" in runs[0] else f"{'-':>18}"
            print(
                f"{name:<12}{c:>6}{median(runs, 'rps'):>10.0f}{median(runs, 'p50_ms'):>9.3f}"
                f"{median(runs, 'p99_ms'):>9.3f}{sum(r['errors'] for r in runs):>8.0f}{cpu}"
            )
    print()
    for c in conns:
        bridge, bare, direct = (results[(n, c)] for n in ("bridge", "bare-proxy", "direct"))
        print(
            f"{c:>3} conn: bridge/bare throughput {median(bridge, 'rps') / median(bare, 'rps'):.2f}x; "
            f"added p50 vs bare {median(bridge, 'p50_ms') - median(bare, 'p50_ms'):+.3f} ms, "
            f"vs direct {median(bridge, 'p50_ms') - median(direct, 'p50_ms'):+.3f} ms; "
            f"CPU per request bridge/bare {median(bridge, 'cpu_us') / median(bare, 'cpu_us'):.2f}x"
        )
        if (tcp := results.get(("bridge-tcp", c))) is not None:
            print(
                f"{c:>3} conn: bridge over instance.sock (sandboxed) / over TCP (unsandboxed): throughput "
                f"{median(bridge, 'rps') / median(tcp, 'rps'):.2f}x, p50 "
                f"{median(bridge, 'p50_ms') - median(tcp, 'p50_ms'):+.3f} ms"
            )


if __name__ == "__main__":
    main()
