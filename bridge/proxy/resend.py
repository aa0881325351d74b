"""Whether a request that reached an instance may be sent again to the instance that replaces it.

A request the bridge knows never reached the instance is always sent again. One that reached it and got no
complete answer (the instance died under it) may have acted — a tool that appended to a file and died before
answering — so it is sent again only when a second run cannot do harm: methods that only read, and tool calls
whose tool the server itself annotated ``readOnlyHint`` or ``idempotentHint`` (``ToolHints`` learns them from
the ``tools/list`` answers that pass through the proxy). Anything else gets one JSON-RPC error saying the
instance restarted and the call may have run: never a silent second run of a tool that writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bridge.jsonlimits import too_deep

# Methods that only read (or, like initialize, start afresh): a second run changes nothing.
SAFE_METHODS = frozenset({"ping", "initialize", "tools/list", "server/discover", "completion/complete"})
SAFE_PREFIXES = ("resources/", "prompts/")
RESTARTED_CODE = -32003  # implementation-defined server error (JSON-RPC reserves -32000..-32099)
MAX_WATCHED = 8 * 2**20  # the SSE answer text a watch keeps at most (tools/list pages are far smaller)


@dataclass(frozen=True, slots=True)
class Call:
    """What one POST asks: ``safe`` when sending it twice cannot do harm; ``request_id`` when it is one
    JSON-RPC request (its answer carries that id); ``method`` of that request."""

    safe: bool
    request_id: Any = None
    method: str | None = None

    @property
    def awaits_answer(self) -> bool:
        return self.request_id is not None


STREAM = Call(safe=True)  # a GET (a stream opens again) or a DELETE (a session ends twice)


def classify(http_method: str, body: bytes | None, safe_tools: frozenset[str] | set[str]) -> Call:
    """The Call of one request on the MCP route (``body`` already checked for depth)."""
    if http_method != "POST":
        return STREAM
    try:
        message = json.loads(body or b"")
    except ValueError:
        return Call(safe=False)  # not JSON-RPC: nothing known about what it does
    messages = message if isinstance(message, list) else [message]
    safe = all(_message_is_safe(m, safe_tools) for m in messages)
    if isinstance(message, dict) and "id" in message and isinstance(message.get("method"), str):
        return Call(safe=safe, request_id=message["id"], method=message["method"])
    return Call(safe=safe)


def _message_is_safe(message: Any, safe_tools: frozenset[str] | set[str]) -> bool:
    if not isinstance(message, dict):
        return False
    method = message.get("method")
    if "id" not in message or method is None:
        return True  # a notification, or the client's answer to a server's request: nothing runs twice
    if not isinstance(method, str):
        return False
    if method in SAFE_METHODS or method.startswith(SAFE_PREFIXES):
        return True
    params = message.get("params")
    return method == "tools/call" and isinstance(params, dict) and params.get("name") in safe_tools


def restarted_error(call: Call, what: str) -> dict[str, Any]:
    """The JSON-RPC error a client gets, once, for a call cut by its instance's death and not sent again."""
    message = (f"{what} stopped answering during this request (its instance died or restarted); the request "
               "may have run, so the bridge did not send it again")
    return {"jsonrpc": "2.0", "id": call.request_id,
            "error": {"code": RESTARTED_CODE, "message": message, "data": {"mayHaveRun": True}}}


def sse_event(message: dict[str, Any]) -> bytes:
    return b"event: message\ndata: " + json.dumps(message).encode() + b"\n\n"


def sse_messages(text: bytes) -> list[Any]:
    """The JSON messages in the complete events of an SSE text (others skipped)."""
    found = []
    for event in text.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        if data and not too_deep(data):  # the instance's text: never recursed into without a bound
            try:
                found.append(json.loads(data))
            except ValueError:
                continue
    return found


class AnswerWatch:
    """Watches an SSE answer as it is relayed: whether the answer to ``call`` has gone by (then a cut after
    it changes nothing), and, for tools/list, its messages for ``ToolHints``."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.answered = False
        self._pending = bytearray()  # the text after the last complete event
        self.messages: list[Any] = []

    def feed(self, chunk: bytes) -> bool:
        """True when this chunk completes the answer. Linear in the stream: only the new bytes are searched
        for an event's end, and only complete events are parsed."""
        if self.answered or not self.call.awaits_answer:
            return False
        pending = self._pending
        start = max(0, len(pending) - 3)  # an event's end may straddle two chunks
        pending += chunk
        end = max(pending.rfind(b"\n\n", start), pending.rfind(b"\r\n\r\n", start))
        if end < 0:
            if len(pending) > MAX_WATCHED:
                pending.clear()  # one monstrous event: not watched (the stream itself is relayed as ever)
            return False
        text = bytes(pending[:end])
        del pending[: end + 2]
        while pending[:1] in (b"\r", b"\n"):
            del pending[:1]
        for message in sse_messages(text):
            if self._is_answer(message):
                self.answered = True
                self.messages.append(message)
                return True
        return False

    def _is_answer(self, message: Any) -> bool:
        return (isinstance(message, dict) and "method" not in message and message.get("id") == self.call.request_id
                and ("result" in message or "error" in message))


class ToolHints:
    """Per instance (client, service): the tools its server annotated readOnlyHint or idempotentHint."""

    def __init__(self) -> None:
        self._safe: dict[tuple[str, str], set[str]] = {}

    def safe_tools(self, key: tuple[str, str]) -> set[str]:
        return self._safe.get(key, set())

    def learn(self, key: tuple[str, str], call: Call, answer: bytes | list[Any]) -> None:
        """From the answer to ``call`` when it is a tools/list (a JSON body, or the SSE answer's messages)."""
        if call.method != "tools/list":
            return
        if isinstance(answer, bytes):
            if too_deep(answer):
                return
            try:
                answer = [json.loads(answer)]
            except ValueError:
                return
        for message in answer:
            self._learn(key, message)

    def _learn(self, key: tuple[str, str], answer: Any) -> None:
        """From one tools/list answer (a JSON-RPC message): each listed tool is safe or no longer."""
        result = answer.get("result") if isinstance(answer, dict) else None
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return
        safe = self._safe.setdefault(key, set())
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            hints = tool.get("annotations") if isinstance(tool.get("annotations"), dict) else {}
            if hints.get("readOnlyHint") is True or hints.get("idempotentHint") is True:
                safe.add(tool["name"])
            else:
                safe.discard(tool["name"])

    def forget(self, client_id: str) -> None:
        for key in [k for k in self._safe if k[0] == client_id]:
            del self._safe[key]
