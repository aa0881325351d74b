"""One place that turns every error into a JSON body with the right status, and the admin-token check."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from bridge.errors import (
    BadRequest,
    BridgeError,
    InsufficientStorage,
    Invalid,
    NestedTooDeep,
    PayloadTooLarge,
    Unauthorized,
)
from bridge.jsonlimits import JsonTooDeep, control_character_at, loads_bounded
from bridge.observability.alerts import STORAGE_ALARM
from bridge.storage import storage_error

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request"}


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any):
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return web.json_response({"error": body}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BridgeError as exc:
        return _render(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, exc.reason.lower().replace(" ", "_"))
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        if exc.status == 404:
            message = f"no route for {request.method} {request.path}"
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return json_error(exc.status, code, message, headers)
    except Exception as exc:
        mapped = storage_error(exc)  # a full disk or a locked database wherever it was written: 507 / 503
        if mapped is not None:
            log.warning("%s %r refused: %s", request.method, request.path, mapped.message)
            return _render(request, mapped)
        # The traceback goes to the log, never to the caller.
        log.exception("unexpected error in %s %r", request.method, request.path)  # %r: no forged lines
        return json_error(500, "internal_error", "internal error; see the bridge log")


def _render(request: web.Request, exc: BridgeError) -> web.Response:
    if isinstance(exc, InsufficientStorage):
        alarm = request.config_dict.get(STORAGE_ALARM)
        if alarm is not None:
            alarm.failed(exc.message)
    return json_error(exc.status, exc.code, exc.message, exc.headers, **exc.details)


def admin_middleware(admin_token: str, prefix: str = "/api/v1", public: frozenset[str] = frozenset()):
    expected = admin_token.encode()

    @web.middleware
    async def check_admin(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefix) and request.path not in public:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
                raise Unauthorized("missing or invalid admin token")
        return await handler(request)

    return check_admin


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body: 413 too large, 400 not JSON or nested too deep, 422 invalid fields or a
    control character in any string (it would forge lines of the log, or records, that show it)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"request body larger than the {request.client_max_size} bytes allowed") from None
    try:
        data = loads_bounded(raw or b"null")
    except JsonTooDeep as exc:
        raise NestedTooDeep(f"request body refused: {exc.message}", depth=exc.depth, limit=exc.limit) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise Invalid(problems) from None
    # After the model, so a field with a rule of its own (client_id) is refused with that rule's words.
    where = control_character_at(data)
    if where is not None:
        raise Invalid(
            f"{where}: control characters (newline, carriage return, NUL, \\x01-\\x1f, \\x7f) are not allowed "
            "in ids, names, paths or any other field",
            field=where,
        )
    return parsed
