"""Hygiene at the edge, against the whole bridge
in-process (tests/inprocess/; its log is what it logged): what a request carries never forges or fills the log.

- a malformed header line (``Authorization : Bearer …``) made aiohttp log the raw request, token included;
- ``[`` x 100,000 as a body gave a 500 with a RecursionError;
- a workspace directory named ``x\\nINFO fake`` registered and wrote a forged line into the log.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from bridge.edgelog import ParserErrorFilter
from tests.inprocess import InProcessBridge, inprocess_bridge, serving_inprocess

pytestmark = pytest.mark.inprocess
SECRET = "s3cret-token-that-must-never-be-logged"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessBridge]:
    base = tmp_path_factory.mktemp("edge")
    with serving_inprocess(inprocess_bridge(base, PARADISE_LOG_LEVEL="DEBUG")) as proc:
        yield proc


def send_raw(bridge: InProcessBridge, raw: bytes) -> bytes:
    """Write ``raw`` on a fresh loopback connection; what the bridge answers before it closes."""
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=10) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def log_after(bridge: InProcessBridge, mark: int) -> str:
    return bridge.log.read_bytes()[mark:].decode(errors="replace")


def healthz(extra: str) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n\r\n".encode()


MALFORMED = {
    "space before the colon": healthz(f"Authorization : Bearer {SECRET}"),
    "control byte in the token": healthz(f"Authorization: Bearer {SECRET}\x01"),
    "bad method after a good request": healthz("Connection: keep-alive") + f"{SECRET} / HTTP/1.1\r\n\r\n".encode(),
    "folded header line": healthz(f"X-A: 1\r\n  Authorization: Bearer {SECRET}"),
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_never_puts_its_bytes_in_the_log(edge: InProcessBridge, raw: bytes) -> None:
    mark = edge.log.stat().st_size
    answer = send_raw(edge, raw)
    assert b" 400 " in answer.split(b"\r\n", 1)[0] or answer.startswith(b"HTTP/1.1 200")
    assert edge.api("GET", "/clients").status_code == 200  # the bridge is fine, and has flushed its log
    written = log_after(edge, mark)
    assert "refused a malformed HTTP request from 127.0.0.1" in written, written
    assert SECRET not in written and "Traceback" not in written


def test_the_filter_leaves_other_records_alone() -> None:
    keep = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Unhandled %s", ("x",), None)
    assert ParserErrorFilter().filter(keep) and keep.getMessage() == "Unhandled x"
    exc = BadHttpMessage(f"Invalid header token: b'Authorization : Bearer {SECRET}'")
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
                               ("10.0.0.9",), (BadHttpMessage, exc, None))
    assert ParserErrorFilter().filter(record)
    assert record.exc_info is None and record.levelname == "WARNING"
    assert record.getMessage() == (
        "refused a malformed HTTP request from 10.0.0.9: BadHttpMessage (400); what it sent is not logged"
    )


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"client_id": "a", "workspace": ' + b"{" * 100_000])
def test_deep_json_to_the_admin_api_is_a_400(edge: InProcessBridge, body: bytes) -> None:
    mark = edge.log.stat().st_size
    resp = edge.api("POST", "/clients", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "json_too_deep"
    assert "RecursionError" not in log_after(edge, mark)


FORGED = "x\nINFO bridge: client.registered root-shell"


@pytest.mark.parametrize("name", [FORGED, "x\rINFO fake", "x\x1b[2Kfake", "x\x7f", "x\tTAB"])
def test_a_workspace_with_a_control_character_is_refused(edge: InProcessBridge, tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    mark = edge.log.stat().st_size
    resp = edge.api("POST", "/clients", json={"client_id": "ctl", "workspace": str(tmp_path / name),
                                              "services": ["echo"]})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["details"] == {"field": "workspace"} and "control characters" in error["message"]
    assert edge.api("GET", "/clients/ctl").status_code == 404
    written = log_after(edge, mark)
    assert "root-shell" not in written and "INFO fake" not in written


def test_a_link_to_a_directory_with_a_control_character_is_refused(edge: InProcessBridge, tmp_path: Path) -> None:
    (tmp_path / FORGED).mkdir()
    (tmp_path / "innocent").symlink_to(tmp_path / FORGED)
    resp = edge.api("POST", "/clients", json={"client_id": "ctl-link", "workspace": str(tmp_path / "innocent"),
                                              "services": ["echo"]})
    assert resp.status_code == 422, resp.text
    assert "holds a control character (\\n)" in resp.json()["error"]["message"]
    assert "root-shell" not in edge.log.read_text(errors="replace")


@pytest.mark.parametrize(("field", "value"), [("profile", "quick\n"), ("services", ["echo\n"])])
def test_other_fields_with_a_control_character_are_refused(edge: InProcessBridge, tmp_path: Path, field: str,
                                                           value: object) -> None:
    body = {"client_id": "ctl-field", "workspace": str(tmp_path), field: value}
    resp = edge.api("POST", "/clients", json=body)
    assert resp.status_code == 422, resp.text
    assert edge.api("GET", "/clients/ctl-field").status_code == 404
