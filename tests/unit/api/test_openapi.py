from __future__ import annotations

from aiohttp import web

from bridge.api.routes import ENDPOINTS, PREFIX
from bridge.app import create_app
from bridge.settings import load_settings


def test_openapi_document_matches_the_registered_routes(tmp_path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, admin_token="openapi-test-admin-token"))
    api = next(r for r in app.router.resources() if isinstance(r, web.PrefixedSubAppResource))
    assert api.canonical == PREFIX  # the API is a sub-app: its admin middleware never sees the MCP routes
    registered = {
        (route.method, route.resource.canonical)
        for route in api._app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(PREFIX) and route.method != "HEAD"
    }
    from bridge.api.openapi import build_openapi

    doc = build_openapi(ENDPOINTS, PREFIX)
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert registered == documented
    assert len(registered) == 18
    create = doc["paths"]["/api/v1/clients"]["post"]
    assert set(create["responses"]) >= {"201", "400", "401", "409", "413", "422", "503"}
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/ClientCreate")
    assert "client_id" in doc["components"]["schemas"]["ClientCreate"]["properties"]


def _document() -> dict:
    from bridge.api.openapi import build_openapi

    return build_openapi(ENDPOINTS, PREFIX, services=["serena", "quality"])


def test_the_document_carries_the_constraints_the_api_enforces() -> None:
    doc = _document()
    create = doc["components"]["schemas"]["ClientCreate"]
    assert create["required"] == ["client_id", "workspace"] and create["additionalProperties"] is False
    assert create["properties"]["client_id"]["pattern"] == "^[a-z0-9][a-z0-9-]{0,39}$"
    services = create["properties"]["services"]["anyOf"][0]
    assert services["minItems"] == 1 and services["uniqueItems"] is True
    assert services["items"]["enum"] == ["quality", "serena"]
    ops = doc["paths"]
    wait = ops["/api/v1/clients"]["post"]["parameters"][0]
    assert wait["schema"] == {"type": "number", "minimum": 0, "maximum": 600, "default": 0}
    limit = next(p for p in ops["/api/v1/events"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    for path, methods in ops.items():
        for op in methods.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] == "client_id":
                    assert param["schema"]["pattern"] == "^[a-z0-9][a-z0-9-]{0,39}$", path
            if "security" in op:
                assert "401" in op["responses"], path
            if "{client_id}" in path:
                assert "404" in op["responses"], path
    assert {"429", "503"} <= set(ops["/api/v1/clients"]["post"]["responses"])


def test_schema_and_server_agree_on_client_ids_including_a_trailing_newline() -> None:
    """JSON Schema's pattern searches, and its "$" is the end of the text: "^...$" is Python's fullmatch."""
    import jsonschema_rs
    import pytest
    from pydantic import ValidationError

    from bridge.models import CLIENT_ID, ClientCreate

    pattern = _document()["components"]["schemas"]["ClientCreate"]["properties"]["client_id"]
    validator = jsonschema_rs.validator_for(pattern)
    for candidate in ["a", "my-project", "0-x", "a" * 40, "abc\n", "\nabc", "Abc", "-a", "a" * 41, "a b", "", "é"]:
        by_server = CLIENT_ID.fullmatch(candidate) is not None
        assert validator.is_valid(candidate) == by_server, repr(candidate)
        if by_server:
            ClientCreate(client_id=candidate, workspace="/srv/x")
        else:
            with pytest.raises(ValidationError):
                ClientCreate(client_id=candidate, workspace="/srv/x")


def test_query_parameters_are_parsed_as_strictly_as_documented() -> None:
    from aiohttp.test_utils import make_mocked_request

    from bridge.api.routes import LIMIT, WAIT
    from bridge.errors import Invalid

    def parse(query, raw: str):
        return query.parse(make_mocked_request("GET", f"/x?{query.name}={raw}"))

    assert parse(WAIT, "0") == 0 and parse(WAIT, "600") == 600 and parse(WAIT, "1.5e1") == 15
    assert parse(LIMIT, "1") == 1 and parse(LIMIT, "1000") == 1000
    for query, raw in [(WAIT, "601"), (WAIT, "-1"), (WAIT, "nan"), (WAIT, "inf"), (WAIT, "1_0"), (WAIT, "%205"),
                       (WAIT, "5%0A"), (LIMIT, "0"), (LIMIT, "1001"), (LIMIT, "1.5"), (LIMIT, "true")]:
        try:
            parse(query, raw)
        except Invalid:
            continue
        raise AssertionError(f"{query.name}={raw} was accepted")
