"""MCP registration of run_e2e, run_api_tests and run_performance (kept out of server.py, which
passes in its `invoke` wrapper so these tools share the envelope: status, sizing, progress, errors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult

from ..errors import QualityError
from ..profiles import Profile
from ..progress import Progress
from ..workspace import Workspace
from .api_tests import run_api_tests as api_tests
from .appserver import AppRun
from .e2e import run_e2e as e2e
from .performance import run_performance as performance

ToolResult = Annotated[CallToolResult, dict[str, Any]]
Invoke = Callable[..., Awaitable[CallToolResult]]
AppTool = Callable[..., Awaitable[dict[str, Any]]]


def _timeout(value: float | None) -> float | None:
    if value is not None and not 0 < value <= 86400:
        raise QualityError("bad_argument", "timeout_seconds must be between 0 and 86400")
    return value


def register_js_tools(
    server: MCPServer, ws: Workspace, profile_for: Callable[[str | None], Profile], invoke: Invoke
) -> None:
    async def run_app_tool(
        name: str,
        tool: AppTool,
        ctx: Context,
        detail: str,
        page: int,
        app: tuple[str | None, str | None, str | None, float | None],
        **target: Any,
    ) -> CallToolResult:
        """One call of an app tool in the shared envelope; `app` is (profile, start_command, wait_url,
        timeout_seconds) as the client gave them, `target` what the tool runs on."""
        profile, start_command, wait_url, timeout_seconds = app

        async def work(progress: Progress) -> dict[str, Any]:
            call = AppRun(ws, profile_for(profile), start_command, wait_url, _timeout(timeout_seconds), progress)
            return await tool(call, **target)

        return await invoke(name, ctx, 1, work, detail, page)

    @server.tool(
        description="End-to-end tests with Playwright Test on Chromium. Optional `path` (spec file or "
        "directory), `start_command` (started without a shell, stopped at the end) and `wait_url` (polled "
        "until it answers) bring up the app under test. Returns per-test outcomes, failures with file/line/"
        "message, and trace/screenshot paths of failures under .paradise/reports/."
    )
    async def run_e2e(
        ctx: Context,
        path: str | None = None,
        start_command: str | None = None,
        wait_url: str | None = None,
        timeout_seconds: float | None = None,
        profile: str | None = None,
        detail: str = "summary",
        page: int = 1,
    ) -> ToolResult:
        app = (profile, start_command, wait_url, timeout_seconds)
        return await run_app_tool("run_e2e", e2e, ctx, detail, page, app, path=path)

    @server.tool(
        description="API tests with Newman on a Postman collection (`collection`; default: every "
        "*.postman_collection.json) with an optional `environment` file; `start_command`/`wait_url` bring "
        "up the app. Returns each request (method, URL, status, time) with its assertions' outcomes."
    )
    async def run_api_tests(
        ctx: Context,
        collection: str | None = None,
        environment: str | None = None,
        start_command: str | None = None,
        wait_url: str | None = None,
        timeout_seconds: float | None = None,
        profile: str | None = None,
        detail: str = "summary",
        page: int = 1,
    ) -> ToolResult:
        app = (profile, start_command, wait_url, timeout_seconds)
        return await run_app_tool(
            "run_api_tests", api_tests, ctx, detail, page, app, collection=collection, environment=environment
        )

    @server.tool(
        description="Lighthouse on a local `url` (headless Chromium): performance, accessibility, "
        "best-practices and SEO scores, FCP, LCP, TBT and CLS, the failing audits; the JSON and HTML "
        "reports are saved under .paradise/reports/. `start_command`/`wait_url` bring up the app."
    )
    async def run_performance(
        ctx: Context,
        url: str,
        start_command: str | None = None,
        wait_url: str | None = None,
        timeout_seconds: float | None = None,
        profile: str | None = None,
        detail: str = "summary",
        page: int = 1,
    ) -> ToolResult:
        app = (profile, start_command, wait_url, timeout_seconds)
        return await run_app_tool("run_performance", performance, ctx, detail, page, app, url=url)
