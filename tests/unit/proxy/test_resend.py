"""Which requests may be sent again to a healed instance (bridge/proxy/resend.py): the rules and what they learn."""

from __future__ import annotations

import json

import pytest

from bridge.proxy.resend import AnswerWatch, ToolHints, classify, restarted_error, sse_event

KEY = ("alice", "echo")


def body(message: object) -> bytes:
    return json.dumps(message).encode()


def request(method: str, params: dict | None = None, rid: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": method, **({"params": params} if params else {})}


@pytest.mark.parametrize("method", ["ping", "initialize", "tools/list", "resources/read", "resources/list",
                                    "prompts/get", "server/discover"])
def test_methods_that_only_read_are_safe(method: str) -> None:
    call = classify("POST", body(request(method)), set())
    assert call.safe and call.request_id == 1 and call.method == method


def test_a_tool_call_is_safe_only_when_its_tool_was_annotated() -> None:
    call = request("tools/call", {"name": "write", "arguments": {}})
    assert not classify("POST", body(call), set()).safe
    assert not classify("POST", body(call), {"read"}).safe
    assert classify("POST", body(call), {"write"}).safe


def test_notifications_answers_and_streams_are_safe_and_unknown_bodies_are_not() -> None:
    assert classify("POST", body({"jsonrpc": "2.0", "method": "notifications/cancelled"}), set()).safe
    answer = classify("POST", body({"jsonrpc": "2.0", "id": 0, "result": {}}), set())  # to a server's question
    assert answer.safe and not answer.awaits_answer
    assert classify("GET", None, set()).safe and classify("DELETE", None, set()).safe
    assert not classify("POST", b"not json", set()).safe
    batch = [request("ping"), request("tools/call", {"name": "write"}, rid=2)]
    assert not classify("POST", body(batch), set()).safe  # a batch is as safe as its least safe request


def test_hints_are_learned_from_tools_list_and_unlearned() -> None:
    hints = ToolHints()
    listing = classify("POST", body(request("tools/list")), set())
    tools = [{"name": "read", "annotations": {"readOnlyHint": True}}, {"name": "again", "annotations":
             {"idempotentHint": True}}, {"name": "write", "annotations": {"readOnlyHint": False}}, {"name": "bare"}]
    hints.learn(KEY, listing, body({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}))
    assert hints.safe_tools(KEY) == {"read", "again"}
    hints.learn(KEY, listing, [{"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "read"}]}}])
    assert hints.safe_tools(KEY) == {"again"}  # the server no longer says so
    other = classify("POST", body(request("tools/call", {"name": "x"})), set())
    hints.learn(KEY, other, body({"result": {"tools": [{"name": "x", "annotations": {"readOnlyHint": True}}]}}))
    assert "x" not in hints.safe_tools(KEY)  # only a tools/list answer teaches
    hints.forget("alice")
    assert hints.safe_tools(KEY) == set()


def test_the_watch_sees_the_answer_across_chunks_and_ignores_other_messages() -> None:
    call = classify("POST", body(request("tools/call", {"name": "w"}, rid=7)), set())
    watch = AnswerWatch(call)
    question = sse_event({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}})
    progress = sse_event({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
    answer = b"event: message\r\ndata: " + body({"jsonrpc": "2.0", "id": 7, "result": {}}) + b"\r\n\r\n"
    assert not watch.feed(question) and not watch.feed(progress)
    assert not watch.feed(answer[:20]) and not watch.answered
    assert watch.feed(answer[20:]) and watch.answered


def test_the_error_names_the_call_once() -> None:
    call = classify("POST", body(request("tools/call", {"name": "w"}, rid="abc")), set())
    error = restarted_error(call, "echo of alice")
    assert error["id"] == "abc" and error["error"]["data"] == {"mayHaveRun": True}
    assert "may have run" in error["error"]["message"]


def test_the_watch_finds_an_answer_behind_a_long_event_fed_byte_by_byte() -> None:
    call = classify("POST", body(request("tools/list", rid=3)), set())
    watch = AnswerWatch(call)
    stream = sse_event({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "x" * 5000}})
    stream += sse_event({"jsonrpc": "2.0", "id": 3, "result": {"tools": []}})
    seen = [watch.feed(stream[i:i + 1]) for i in range(len(stream))]
    assert seen.count(True) == 1 and seen[-1] and watch.messages[0]["id"] == 3
