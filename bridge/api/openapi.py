"""OpenAPI 3.1 document generated from the endpoint table and the pydantic schemas.

Every constraint the server enforces is in it: the models' patterns and bounds, the query parameters'
types and ranges (``routes.Query``), the path's client id pattern, the services the catalog knows, and each
status an operation can answer, so schema-driven clients and fuzzers send only what the API accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from bridge.models import CLIENT_ID_PATTERN, ErrorView

_REASONS = {
    400: "Malformed request (not JSON, not a JSON object, or nested deeper than 64 levels)",
    401: "Missing or invalid admin token",
    404: "No such client (or an id no client can have)",
    409: "Already exists, or the workspace overlaps another client's (see PARADISE_SHARED_WORKSPACES)",
    413: "Request body too large",
    422: "Invalid input (a control character included); the message names the field and the rule",
    429: "Capacity reached (PARADISE_MAX_INSTANCES / PARADISE_MAX_MEMORY); see Retry-After",
    503: "Unavailable (e.g. port pool exhausted, database locked); see Retry-After",
    507: "The data dir's disk is full: nothing was changed; free space and retry",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds after which a retry may succeed", "schema": {"type": "string"}}}
_PATH_PARAMS = {"client_id": {"type": "string", "pattern": CLIENT_ID_PATTERN}}


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _with_services(components: dict[str, Any], services: Iterable[str] | None) -> None:
    """``services`` items are the catalog's names: known only to a running bridge, so added at serving time."""
    create = components.get("ClientCreate")
    if create is None or services is None:
        return
    prop = copy.deepcopy(create["properties"]["services"])
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "array":
            option["items"] = {"type": "string", "enum": sorted(services)}
    create["properties"]["services"] = prop


def _sse_event(data: dict[str, Any]) -> dict[str, Any]:
    """One server-sent event: its ``id`` and ``event`` lines, and ``data`` a JSON document of the given schema."""
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


def _parameters(ep: Any) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_PARAMS.get(name, {"type": "string"})}
        for name in _path_params(ep.path)
    ]
    params += [
        {"name": q.name, "in": "query", "required": False, "description": q.description, "schema": q.schema()}
        for q in ep.query
    ]
    return params


def _operation(ep: Any, components: dict[str, Any], error_ref: dict[str, str]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": ep.summary, "operationId": ep.handler.__name__, "responses": {}}
    params = _parameters(ep)
    if params:
        operation["parameters"] = params
    if ep.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(ep.request, components)}},
        }
    if ep.status == 204:
        operation["responses"]["204"] = {"description": "Done"}
    else:
        schema: dict[str, Any] = {"type": "object"} if ep.media == "application/json" else {"type": "string"}
        if ep.response is not None:
            schema = _ref(ep.response, components)
            if ep.many:
                schema = {"type": "array", "items": schema}
            if ep.media == "text/event-stream":
                schema = _sse_event(schema)
        operation["responses"][str(ep.status)] = {"description": "OK", "content": {ep.media: {"schema": schema}}}
    for status in ep.errors:
        response: dict[str, Any] = {
            "description": _REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": error_ref}},
        }
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        operation["responses"][str(status)] = response
    if ep.path != "/openapi.json":
        operation["security"] = [{"adminToken": []}]
    return operation


def build_openapi(endpoints: Any, prefix: str, services: Iterable[str] | None = None) -> dict[str, Any]:
    """The document; ``services`` (the catalog's names) makes ``ClientCreate.services`` an enum of them."""
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error_ref = _ref(ErrorView, components)
    for ep in endpoints:
        paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = _operation(ep, components, error_ref)
    _with_services(components, services)
    return {
        "openapi": "3.1.0",
        "info": {"title": "DevOps Paradise Bridge admin API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
