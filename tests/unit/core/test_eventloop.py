"""The bridge's event loop: uvloop where installed, asyncio's own on request or where it is missing."""

import asyncio
import importlib.util

import pytest

from bridge import eventloop


def test_asyncio_loop_on_request_runs_coroutines() -> None:
    loop = eventloop.new_event_loop("asyncio")
    try:
        assert type(loop).__module__.startswith("asyncio")
        assert loop.run_until_complete(asyncio.sleep(0, result=42)) == 42
    finally:
        loop.close()


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop has no build for this platform")
def test_default_is_uvloop_where_installed() -> None:
    assert eventloop.loop_name() == "uvloop"
    loop = eventloop.new_event_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
        assert loop.run_until_complete(asyncio.sleep(0, result="ok")) == "ok"
    finally:
        loop.close()
