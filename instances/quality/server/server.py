"""The quality MCP server for one workspace: the instructions, one short registration per capability
(tools_testing, tools_checks, tools_impact, tools_app, tools_reports; each over the shared Site) and
the dashboard's routes.  Each tool returns structured JSON plus a short text summary; bad input becomes
a structured error (status "error"), never a crashed server."""

from __future__ import annotations

from functools import partial

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..core.errors import QualityError
from ..core.jobs import JobRegistry
from ..core.profiles import Profile, pick_profile
from ..core.workspace import Workspace
from ..reports.reports import report_dir
from .envelope import invoke_tool
from .runstore import RunStore
from .site import Site
from .tools_app import register_app_tools
from .tools_checks import register_check_tools
from .tools_impact import register_impact_tools
from .tools_reports import register_report_tools
from .tools_testing import register_testing_tools

INSTRUCTIONS = (
    "Quality tools for one workspace: run_tests (pytest/jest/vitest with coverage), lint (ruff/eslint/prettier), "
    "run_e2e (Playwright), run_api_tests (Newman), run_performance (Lighthouse), "
    "security_scan (bandit, pip-audit, npm audit), analyze_changes (git diff, changed functions, import "
    "graph, impacted tests), run_impacted_tests, quality_report (writes HTML/JSON/Markdown reports under "
    "the workspace's .paradise/, or the instance's state when the workspace is read-only) and "
    "quality_trends.  Results are structured JSON; `status` is ok, failed (tests ran and some failed: see "
    "`counts`, `failures`), partial (something was skipped: see `skipped`), incomplete (a check could not run: "
    "see `errors`), skipped (nothing to do) or error.  Every "
    "result has a `run_id`; replies stay under 40 KB: `more` lists what was shortened; call again with "
    "run_id and page=N or detail='full' for the rest, read from that run without running anything again."
)


def build_server(ws: Workspace, profiles: dict[str, Profile], default_profile: str | None = None) -> MCPServer:
    """The MCP server for one workspace; `default_profile` applies when a call names no profile."""
    server = MCPServer("paradise-quality", instructions=INSTRUCTIONS, version="0.1.0")
    try:
        jobs = JobRegistry(report_dir(ws))
    except QualityError:  # nowhere to write: the dashboard's view stays in memory
        jobs = JobRegistry(None)
    invoke = partial(invoke_tool, jobs=jobs, runs=RunStore())
    site = Site(server, ws, profiles, pick_profile(profiles, default_profile).name, invoke)
    for register in (
        register_testing_tools,
        register_check_tools,
        register_impact_tools,
        register_report_tools,
        register_app_tools,
    ):
        register(site)
    register_routes(server, ws, jobs)
    return server


def register_routes(server: MCPServer, ws: Workspace, jobs: JobRegistry) -> None:
    """/healthz, and for the bridge's dashboard the jobs and the latest HTML report; behind the instance
    key like everything else (__main__.py wraps the app)."""

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "quality", "workspace": str(ws.root)})

    @server.custom_route("/quality/status", methods=["GET"])
    async def quality_status(request: Request) -> JSONResponse:
        return JSONResponse(jobs.status(), headers={"Cache-Control": "no-store"})

    @server.custom_route("/quality/report.html", methods=["GET"])
    async def latest_report(request: Request) -> Response:
        path = jobs.report_html()
        try:
            body = path.read_text(encoding="utf-8", errors="replace") if path else None
        except OSError:
            body = None
        if body is None:
            error = {"code": "no_report", "message": "no HTML report yet: run quality_report first"}
            return JSONResponse({"error": error}, status_code=404)
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})
