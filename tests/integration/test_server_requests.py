"""Server-to-client requests, every time (issue 26.1): a 2025-era server asks the client questions in the
middle of tool calls (sampling and elicitation, on the call's own stream and on the session's GET stream)
and the client answers each with a new POST — 200 questions interleaved with other traffic (tool calls,
progress streams, tools/list) on the same session and instance, through a real bridge, all answered.
The whole bridge in-process (tests/inprocess/), real SDK server, the official SDK client as a session-era client."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from tests.inprocess import InProcessBridge

pytestmark = pytest.mark.inprocess
QUESTIONS = 200
AT_ONCE = 16  # exchanges in flight at any moment on the one session
CALL_BOUND = 30.0  # a bound on each exchange (a lost answer fails the test, not hangs it), not a timing claim


async def sampling(_context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    question = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=f"s:{question}"),
                                     model="test")


async def elicitation(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"text": f"e:{params.message}"})


async def test_200_server_questions_under_mixed_traffic_are_all_answered(bridge: InProcessBridge, workspace) -> None:
    token = bridge.register("asker", workspace, ["echo"])["token"]
    answered: list[int] = []
    gate = asyncio.Semaphore(AT_ONCE)
    warnings.simplefilter("ignore")  # the SDK marks sampling deprecated as of 2026-07-28; this is a 2025 session

    async def question(client: Client, i: int) -> None:
        kind = "sampling" if i % 2 else "elicitation"
        arguments = {"kind": kind, "question": f"q{i}", "on_get_stream": i % 4 >= 2}
        async with gate:
            result = await asyncio.wait_for(client.call_tool("ask", arguments), CALL_BOUND)
        assert result.content[0].text == f"{kind[0]}:q{i}", result  # type: ignore[union-attr]
        answered.append(i)

    async def other(client: Client, i: int) -> None:
        async with gate:
            if i % 3 == 0:
                assert (await client.call_tool("echo", {"text": f"n{i}"})).content[0].text == f"n{i}"  # type: ignore[union-attr]
            elif i % 3 == 1:
                assert "ask" in {t.name for t in (await client.list_tools()).tools}
            else:
                await asyncio.wait_for(client.call_tool("count", {"steps": 2, "delay": 0.01}), CALL_BOUND)

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=CALL_BOUND)) as http,
        Client(streamable_http_client(bridge.mcp_url("asker", "echo"), http_client=http), mode="legacy",
               sampling_callback=sampling, elicitation_callback=elicitation) as client,
    ):
        exchanges = [f(client, i) for i in range(QUESTIONS) for f in (question, other)]
        outcomes = await asyncio.gather(*exchanges, return_exceptions=True)
    failures = [repr(o)[:300] for o in outcomes if isinstance(o, BaseException)]
    assert not failures, failures[:5]
    assert sorted(answered) == list(range(QUESTIONS))
