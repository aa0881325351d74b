"""Which event loop the bridge runs on: uvloop where it is installed (Linux, macOS), else asyncio's own.

uvloop does the loop's socket and callback work in C: on the proxy's hot path that is a large share of
every request (see the README's proxy figures, measured with the reference proxy on the same loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Coroutine
from typing import Any


def loop_name() -> str:
    """``uvloop`` when it can be used here, else ``asyncio``."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def new_event_loop(name: str | None = None) -> asyncio.AbstractEventLoop:
    """A fresh loop of the given kind (default: the best available)."""
    if (name or loop_name()) == "uvloop":
        import uvloop  # only here: it is optional (no Windows build)

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


@contextlib.asynccontextmanager
async def background(work: Coroutine[Any, Any, Any], name: str) -> AsyncIterator[asyncio.Task[Any]]:
    """``work`` as a task while the block runs (an app's cleanup context: a monitor, a sampler), then
    cancelled and awaited, so no task outlives the app that started it."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
