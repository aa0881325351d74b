"""Serena start-up cost: registration to first semantic answer, through the bridge, for N clients at once.

    python -m scripts.bench.serena [--clients 1,5,10] [--runtime process|docker] [--language python,typescript,...]

For each N: N clients are registered concurrently, each on its own generated Python workspace, and each
asks its Serena (through the bridge, with the official MCP SDK client) for ``find_symbol`` of a class in
its workspace as soon as it is registered; the bridge holds the request until the instance is ready.
Prints p50 and max seconds from registration to the first correct answer, and the resident memory of each
instance (Serena plus its language server: the process tree, or the container's memory usage on Docker).
Process runtime: Serena is installed on first use (PARADISE_SERENA_VENV, default
~/.cache/devops-paradise/serena-venv). Docker runtime: the images must be built (devops-paradise images
build); the first round is a warm-up either way. Loopback only.

``--language`` (default python) measures each named language on its workspace from tests/fixtures/languages
(``Calculator``, Bash's ``calculator_add``; ``mixed`` is the Python + TypeScript repository), its language pack
installed beforehand (scripts/install-language-packs.sh): warm figures, as the README reports them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from mcp import MCPError

from tests.helpers import BridgeProcess, instance_pid, mcp_client

CONTAINER_UID = 10001
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "languages"
# language -> (fixture directory, the symbol asked for); python uses the generated workspace
LANGUAGE_CASES = {"typescript": ("typescript", "Calculator"), "javascript": ("javascript", "Calculator"),
                  "go": ("go", "Calculator"), "cpp": ("cpp", "Calculator"), "bash": ("bash", "calculator_add"),
                  "php": ("php", "Calculator"), "mixed": ("mixed", "Calculator")}


def make_workspace(root: Path, index: int, owner: int | None = None) -> tuple[Path, str]:
    cls = f"Widget{index}"
    package = root / f"pkg{index}"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for module in range(10):  # a small but real project: ten modules
        (package / f"mod{module}.py").write_text(
            f"from pkg{index}.base import {cls}\n\n\n"
            f"def use_{module}(w: {cls}) -> int:\n    return w.size() + {module}\n"
        )
    (package / "base.py").write_text(f"class {cls}:\n    def size(self) -> int:\n        return 1\n")
    chown_tree(root, owner)
    return root, cls


def chown_tree(root: Path, owner: int | None) -> None:
    if owner is not None:  # containers run as the workspace's owner
        for path in [root, *root.rglob("*")]:
            os.chown(path, owner, owner)


def make_language_workspace(root: Path, index: int, language: str, owner: int | None) -> tuple[Path, str]:
    if language == "python":
        return make_workspace(root, index, owner)
    fixture, symbol = LANGUAGE_CASES[language]
    shutil.copytree(FIXTURES / fixture, root)
    chown_tree(root, owner)
    return root, symbol


async def first_answer(bridge: BridgeProcess, http: httpx.AsyncClient, name: str, workspace: Path, cls: str) -> float:
    began = time.perf_counter()
    resp = await http.post(
        "/api/v1/clients", json={"client_id": name, "workspace": str(workspace), "services": ["serena"]}
    )
    resp.raise_for_status()
    token = resp.json()["token"]
    for _ in range(600):  # bounded: at most 600 tries
        try:
            async with mcp_client(bridge.mcp_url(name, "serena"), token, read_timeout=600) as client:
                result = await client.call_tool("find_symbol", {"name_path_pattern": cls})
        except MCPError as exc:  # e.g. 503 while its start failed: say so, try again (bounded)
            print(f"{name}: {exc} after {time.perf_counter() - began:.1f}s", file=sys.stderr)
        else:
            if not result.is_error and cls in result.content[0].text:
                return time.perf_counter() - began
            print(f"{name}: not yet: {result.content[0].text[:200]}", file=sys.stderr)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name}: no answer")


def rss_mib(bridge: BridgeProcess, name: str, runtime: str) -> float:
    if runtime == "docker":
        import docker

        client = docker.from_env()
        stats = client.containers.get(f"paradise-{name}-serena").stats(stream=False)
        client.close()
        memory = stats["memory_stats"]
        # What `docker stats` shows: usage less the reclaimable page cache.
        return (memory["usage"] - memory.get("stats", {}).get("inactive_file", 0)) / 2**20
    root = psutil.Process(instance_pid(bridge, name, "serena"))
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


async def run_round(
    bridge: BridgeProcess, n: int, work: Path, runtime: str, language: str = "python"
) -> tuple[list[float], list[float]]:
    owner = CONTAINER_UID if runtime == "docker" else None
    spaces = [make_language_workspace(work / f"{language}-n{n}-c{i}", i, language, owner) for i in range(n)]
    headers = {"Authorization": f"Bearer {bridge.admin_token}"}
    async with httpx.AsyncClient(base_url=bridge.url, headers=headers, timeout=600) as http:
        seconds = await asyncio.gather(
            *(first_answer(bridge, http, f"bench-{n}-{i}", ws, cls) for i, (ws, cls) in enumerate(spaces))
        )
        await asyncio.sleep(2)  # let the language servers settle before measuring memory
        memory = [rss_mib(bridge, f"bench-{n}-{i}", runtime) for i in range(n)]
        for i in range(n):
            await http.delete(f"/api/v1/clients/bench-{n}-{i}")
    return list(seconds), memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,5,10")
    parser.add_argument("--runtime", choices=["process", "docker"], default="process")
    parser.add_argument("--language", default="python",
                        help=f"comma-separated: python, {', '.join(LANGUAGE_CASES)} (default python)")
    args = parser.parse_args()
    venv = os.environ.get("PARADISE_SERENA_VENV", str(Path.home() / ".cache/devops-paradise/serena-venv"))
    work = Path(tempfile.mkdtemp(prefix="paradise-bench-serena-"))
    work.chmod(0o755)  # containers run unprivileged and must traverse it
    bridge = BridgeProcess(
        work / "data",
        env={
            "PARADISE_SERENA_VENV": venv,
            "PARADISE_START_TIMEOUT": "300",
            "PARADISE_READY_TIMEOUT": "300",
            "PARADISE_LOG_LEVEL": "WARNING",
            "PARADISE_RUNTIME": args.runtime,
            "PARADISE_WORKSPACE_ROOTS": str(work),  # the generated workspaces live there
        },
        pool_size=40,
    )
    rows = []
    try:
        bridge.start()
        # Warm-up (not reported): installs Serena if needed and warms the OS file cache.
        asyncio.run(run_round(bridge, 1, work / "warmup", args.runtime))
        for language in args.language.split(","):
            for n in (int(x) for x in args.clients.split(",")):
                seconds, memory = asyncio.run(run_round(bridge, n, work, args.runtime, language))
                rows.append((language, n, statistics.median(seconds), max(seconds), statistics.median(memory),
                             max(memory)))
    finally:
        bridge.kill(signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nbench_serena ({args.runtime} runtime): registration -> first find_symbol answer through the bridge; "
        f"{os.cpu_count()} CPUs\n"
    )
    print(f"{'language':<12}{'clients':>8}{'p50 s':>9}{'max s':>9}{'RSS/inst MiB p50':>19}{'max':>8}")
    for language, n, p50, worst, mem, mem_max in rows:
        print(f"{language:<12}{n:>8}{p50:>9.2f}{worst:>9.2f}{mem:>19.0f}{mem_max:>8.0f}")
    keys = ["language", "clients", "p50_s", "max_s", "rss_p50_mib", "rss_max_mib"]
    print(json.dumps({"results": [dict(zip(keys, row, strict=True)) for row in rows]}))


if __name__ == "__main__":
    main()
