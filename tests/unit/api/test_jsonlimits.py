"""Deep JSON is refused before it is parsed: ``[`` x 100,000 once made ``json.loads`` raise RecursionError (500)."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from bridge.api.middleware import error_middleware, read_model
from bridge.jsonlimits import MAX_JSON_DEPTH, JsonTooDeep, json_depth, loads_bounded, too_deep


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "\\"[[[["]', 1),  # brackets in strings, escaped quotes included, do not count
        ("]]]][", 0),
    ],
)
def test_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert json_depth(text) == depth == json_depth(text.encode())


def test_the_limit_is_inclusive() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not too_deep(at_limit) and loads_bounded(at_limit) == json.loads(at_limit)
    assert too_deep("[" + at_limit + "]")
    # many brackets side by side are wide, not deep
    assert not too_deep("[" + "[]," * 10_000 + "[]]")


def test_a_hundred_thousand_brackets_raise_a_value_error_not_recursion() -> None:
    with pytest.raises(JsonTooDeep) as caught:
        loads_bounded(b"[" * 100_000)
    assert isinstance(caught.value, ValueError)
    assert caught.value.depth == 100_000 and "at most 64" in caught.value.message


class Body(BaseModel):
    a: object = None


async def echo(request: web.Request) -> web.Response:
    body = await read_model(request, Body)
    return web.json_response({"a": body.a})


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a": ' + b"{" * 100_000, b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}"])
async def test_read_model_answers_400_for_deep_bodies(body: bytes) -> None:
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    app.router.add_post("/x", echo)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/x", data=body)
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error["code"] == "json_too_deep" and "at most 64" in error["message"]
        ok = await client.post("/x", data=b'{"a": ' + b"[" * 60 + b"]" * 60 + b"}")
        assert ok.status == 200
