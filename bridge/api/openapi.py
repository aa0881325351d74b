"""OpenAPI 3.1 document generated from the endpoint table and the pydantic schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bridge.models import ErrorView

_REASONS = {
    400: "Malformed request", 401: "Missing or invalid admin token", 404: "Not found",
    409: "Already exists", 413: "Request body too large", 422: "Invalid input",
    503: "Unavailable (e.g. port pool exhausted); see Retry-After",
}


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi(endpoints: Any, prefix: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error_ref = _ref(ErrorView, components)
    for ep in endpoints:
        operation: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": ep.handler.__name__,
            "responses": {},
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(ep.path)
        ]
        params += [
            {"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
            for name, text in ep.query.items()
        ]
        if params:
            operation["parameters"] = params
        if ep.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(ep.request, components)}},
            }
        if ep.status == 204:
            operation["responses"]["204"] = {"description": "Done"}
        elif ep.response is not None:
            schema = _ref(ep.response, components)
            if ep.many:
                schema = {"type": "array", "items": schema}
            operation["responses"][str(ep.status)] = {
                "description": "OK", "content": {ep.media: {"schema": schema}},
            }
        else:
            operation["responses"][str(ep.status)] = {
                "description": "OK", "content": {ep.media: {"schema": {"type": "object"}}},
            }
        for status in ep.errors:
            operation["responses"][str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        if ep.path != "/openapi.json":
            operation["security"] = [{"adminToken": []}]
        paths.setdefault(prefix + ep.path, {})[ep.method.lower()] = operation
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
