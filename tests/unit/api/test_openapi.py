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
    assert len(registered) == 11
    create = doc["paths"]["/api/v1/clients"]["post"]
    assert set(create["responses"]) >= {"201", "400", "401", "409", "413", "422", "503"}
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/ClientCreate")
    assert "client_id" in doc["components"]["schemas"]["ClientCreate"]["properties"]
