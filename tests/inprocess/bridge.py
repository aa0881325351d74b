"""The whole bridge in the test process (after JupyterHub's ``MockHub`` on ``MockSpawner``): the real app from
``create_app`` (store on SQLite in its data dir, admin API, proxy, dashboard feed, health monitor) over the
in-process runtime (runtime.py), served on its own loopback port by aiohttp's runner in a thread of its own, so
synchronous tests (httpx, subprocess CLIs) and asynchronous ones reach it alike, over real HTTP.

It has BridgeProcess's surface (tests/helpers.py: ``url``, ``admin_token``, ``data_dir``, ``log``, ``api``,
``register``, ``wait_state``...), so moving a test from a bridge process is swapping the fixture. Settings come
from the same environment a bridge process would get (``env`` adds to it), read with ``load_settings`` as
the CLI does. ``log`` holds what this bridge logged (its thread and the tasks and worker threads it started).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from aiohttp import web

from bridge import eventloop
from bridge.app import create_app
from bridge.settings import BridgeSettings, load_settings
from tests.helpers import BridgeClient, bridge_settings_env, fixture_catalog, free_block
from tests.inprocess.runtime import McpRuntime

START_BOUND = 30.0  # bounds on start-up and shutdown, not timing claims
_serving: contextvars.ContextVar[InProcessBridge | None] = contextvars.ContextVar("inprocess_bridge", default=None)


class _OwnRecords(logging.Filter):
    """Only the records this bridge made (its context travels to its tasks and to_thread workers)."""

    def __init__(self, bridge: InProcessBridge) -> None:
        super().__init__()
        self.bridge = bridge

    def filter(self, record: logging.LogRecord) -> bool:
        return _serving.get() is self.bridge


class InProcessBridge(BridgeClient):
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, pool_size: int = 30,
                 runtime: McpRuntime | None = None) -> None:  # fmt: skip
        self.data_dir = data_dir
        first = free_block(pool_size + 1)
        self.port = first
        self.pool = range(first + 1, first + 1 + pool_size)
        self.admin_token = "test-admin-token-" + str(first)
        self.env = bridge_settings_env(self, env)
        self.runtime = runtime or McpRuntime()
        self.log = data_dir / "bridge.log"
        self.app: web.Application | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._handler: logging.Handler | None = None
        self._root_level = logging.NOTSET

    def settings(self) -> BridgeSettings:
        """Read as a bridge process reads its environment (the CLI's ``load_settings``)."""
        with mock.patch.dict("os.environ", self.env, clear=True):
            return load_settings()

    def start(self, timeout: float = START_BOUND) -> InProcessBridge:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings()
        self._log_to_file(settings.log_level)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(settings, ready, failure), daemon=True,
                                        name=f"bridge {self.port}")  # fmt: skip
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"the in-process bridge did not start:\n{self.log.read_text()[-3000:]}")
        if failure:
            self._thread.join(START_BOUND)
            raise failure[0]
        return self

    def stop(self) -> None:
        """Shut the app down as a SIGTERM does (cleanup contexts, instances stopped, sockets closed)."""
        if self._thread is None or self.loop is None or self._stop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_BOUND)
        assert not self._thread.is_alive(), "the in-process bridge did not stop"
        self._thread = None
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._root_level)
            self._handler.close()
            self._handler = None

    def kill(self, sig: int = 0) -> None:
        """BridgeProcess's name for stopping (any signal: the app shuts down the one way it can here)."""
        self.stop()

    def call(self, coro: Any, timeout: float = START_BOUND) -> Any:
        """Run ``coro`` in the bridge's loop (to act on its runtime, say) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def launch_id(self, client_id: str, service: str) -> int:
        """Which launch of the instance runs now (a process's pid, for the in-process runtime)."""
        launch = self.runtime.live(client_id, service)
        assert launch is not None, f"no live instance of {client_id}/{service}"
        return launch.ident

    def crash(self, client_id: str, service: str) -> None:
        """kill -9 of the instance: it is gone (port closed, connections cut, exit code 137) when this returns."""
        self.call(self.runtime.kill(client_id, service))

    # ---- the bridge's thread ----------------------------------------------------------------------------

    def _run(self, settings: BridgeSettings, ready: threading.Event, failure: list[BaseException]) -> None:
        _serving.set(self)
        loop = eventloop.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            loop.run_until_complete(self._serve(settings, ready, failure))
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop), return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            ready.set()

    async def _serve(self, settings: BridgeSettings, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stop = asyncio.Event()
        try:
            self.app = create_app(settings, runtime=self.runtime)
            # As bridge/upgrade.py serves it: handlers cancelled when their client goes, no access log.
            runner = web.AppRunner(self.app, handle_signals=False, access_log=None, handler_cancellation=True,
                                   shutdown_timeout=5)  # fmt: skip
            await runner.setup()
        except BaseException as exc:  # handed to the test's thread
            failure.append(exc)
            ready.set()
            return
        try:
            await web.TCPSite(runner, settings.host, settings.port, reuse_address=True).start()
            ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def _log_to_file(self, level: str) -> None:
        handler = logging.FileHandler(self.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(level.upper())
        handler.addFilter(_OwnRecords(self))
        root = logging.getLogger()
        self._root_level = root.level  # given back on stop
        if root.getEffectiveLevel() > handler.level:
            root.setLevel(handler.level)  # as the CLI's basicConfig does
        root.addHandler(handler)
        self._handler = handler


def inprocess_bridge(base: Path, **env: str) -> InProcessBridge:
    """An in-process bridge (not started yet) serving the fixture catalog, with its data in ``base``."""
    catalog = fixture_catalog(base / "catalog.toml")
    return InProcessBridge(base / "data", env={"PARADISE_CATALOG": str(catalog), **env})


@contextlib.contextmanager
def serving_inprocess(bridge: InProcessBridge) -> Iterator[InProcessBridge]:
    """Start ``bridge``; afterwards delete its clients (instances stop) and stop it."""
    bridge.start()
    try:
        yield bridge
    finally:
        bridge.delete_all_clients()
        bridge.stop()
