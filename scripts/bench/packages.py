"""Time from ``devops-paradise catalog add`` to the first answer, per registry package, cold then warm.

    python -m scripts.bench.packages [--only everything,files,git,time] [--runtime process|docker] [--keep]

For each package a bridge of its own (process runtime, sandboxed as configured, loopback only) is started
first; then the clock runs from ``catalog add`` through registering a client with the new service (held until
ready) to the first ``tools/list`` answer through the bridge (MCP initialize included).

- cold: a data dir that has never seen the package, npm with an empty cache of its own and pip with no cache,
  so everything is downloaded from the registry;
- warm: ``catalog add`` again on the same data dir (the install is found, nothing is downloaded) and a new
  client: what every later user of the service waits for.

On ``--runtime docker`` ``catalog add`` builds the package's image instead of installing it on the host: cold
= that image removed first (the foundation stays: it is every image's), warm = the image found, built again
from the layer cache. Workspaces are owned by the images' user (10001), as a user's project would be.

Prints one row per package (install, start, total, in seconds) and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import ROOT, BridgeProcess, mcp_client, serving

PACKAGES = {
    "everything": ("npm:@modelcontextprotocol/server-everything@2026.8.31", ["--arg=stdio"]),
    "files": ("npm:@modelcontextprotocol/server-filesystem@2026.8.31", ["--arg={workspace}"]),
    "git": ("pypi:mcp-server-git==2026.10.19", ["--arg=--repository", "--arg={workspace}"]),
    "time": ("pypi:mcp-server-time==2026.10.19", ["--arg=--local-timezone", "--arg=UTC"]),
}
IMAGE_UID = 10001  # the images' own user (images/base)


def catalog_add(bridge: BridgeProcess, name: str, cold_caches: Path | None) -> float:
    package, args = PACKAGES[name]
    env = {**os.environ, "PARADISE_DATA_DIR": str(bridge.data_dir), "PYTHONPATH": str(ROOT),
           "PARADISE_RUNTIME": bridge.env["PARADISE_RUNTIME"]}
    if cold_caches is not None:
        env |= {"npm_config_cache": str(cold_caches / "npm"), "PIP_NO_CACHE_DIR": "1"}
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bridge", "catalog", "add", name, package, *args], env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"catalog add {name} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - began


async def first_answer(bridge: BridgeProcess, client: str, token: str, service: str) -> int:
    async with mcp_client(bridge.mcp_url(client, service), token) as session:
        return len((await session.list_tools()).tools)


def one_run(bridge: BridgeProcess, name: str, client: str, workspace: Path, caches: Path | None) -> dict:
    began = time.monotonic()
    install = catalog_add(bridge, name, caches)
    token = bridge.register(client, workspace, [name], wait=300)["token"]
    state = bridge.state(client, name)
    if state["state"] != "running":
        log = "\n".join(state.get("last_log") or [])
        raise SystemExit(f"{name} of {client} is {state['state']}: {state.get('last_error')}\n{log}")
    tools = asyncio.run(first_answer(bridge, client, token, name))
    total = time.monotonic() - began
    return {"install_s": round(install, 2), "start_s": round(total - install, 2), "total_s": round(total, 2),
            "tools": tools}


def workspace_for(root: Path, name: str) -> Path:
    path = root / f"ws-{name}"
    path.mkdir()
    (path / "README.md").write_text("bench\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "add", "README.md"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "bench"], cwd=path, check=True)
    if os.geteuid() == 0:  # containers run as the workspace's owner, never root
        for part in [path, *path.rglob("*")]:
            os.chown(part, IMAGE_UID, IMAGE_UID, follow_symlinks=False)
    return path


def drop_image(name: str) -> None:
    """Cold on Docker: the package's image removed, so catalog add builds it (the foundation stays)."""
    import docker

    from bridge.catalog.packages import Package

    with contextlib.suppress(docker.errors.ImageNotFound):
        docker.from_env().images.remove(Package.parse(PACKAGES[name][0]).image_tag, force=True)


def bench(name: str, root: Path, runtime: str) -> dict:
    settings = {"PARADISE_WORKSPACE_ROOTS": str(root), "PARADISE_READY_TIMEOUT": "300",
                "PARADISE_START_TIMEOUT": "120", "PARADISE_RUNTIME": runtime}
    if runtime == "docker":
        drop_image(name)
    bridge = BridgeProcess(root / f"data-{name}", env=settings)
    bridge.env.pop("PARADISE_CATALOG", None)
    with serving(bridge):
        caches = root / f"caches-{name}"
        cold = one_run(bridge, name, "cold", workspace_for(root, f"{name}-cold"), caches)
        warm = one_run(bridge, name, "warm", workspace_for(root, f"{name}-warm"), None)
    return {"package": PACKAGES[name][0], "runtime": runtime, "cold": cold, "warm": warm}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PACKAGES), help="comma list of " + ", ".join(PACKAGES))
    parser.add_argument("--runtime", default="process", choices=["process", "docker"])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-packages-")).resolve()
    root.chmod(0o755)  # the containers' user traverses it to the workspaces
    figures = {}
    try:
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            figures[name] = bench(name, root, args.runtime)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{'service':<11} {'package':<56} {'run':<5} {'install':>8} {'start':>7} {'total':>7}")
    for name, row in figures.items():
        for run in ("cold", "warm"):
            r = row[run]
            print(f"{name:<11} {row['package']:<56} {run:<5} {r['install_s']:>7.1f}s {r['start_s']:>6.1f}s "
                  f"{r['total_s']:>6.1f}s")
    print(json.dumps({"bench": "packages", "figures": figures}))


if __name__ == "__main__":
    main()
