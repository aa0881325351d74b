"""MCP registration of the app layer's tools: run_e2e, run_api_tests and run_performance, each with the
app the client names (`start_command`, `wait_url`) brought up around it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from ..app.api_tests import run_api_tests as api_tests
from ..app.appserver import AppRun
from ..app.e2e import run_e2e as e2e
from ..app.performance import run_performance as performance
from ..core.datadir import where_files_go
from ..core.errors import checked_timeout
from ..core.progress import Progress
from .site import Detail, Page, ProfileName, RunId, Site, TimeoutSeconds, ToolResult

AppTool = Callable[..., Awaitable[dict[str, Any]]]

StartCommand = Annotated[
    str | None, Field(description="Starts the app under test (run without a shell, stopped at the end).")
]
WaitUrl = Annotated[
    str | None, Field(description="A URL on this machine (127.0.0.1, localhost), polled until it answers.")
]


def register_app_tools(site: Site) -> None:
    async def run_app_tool(
        tool: AppTool,
        profile: str | None,
        start_command: str | None,
        wait_url: str | None,
        timeout_seconds: float | None,
        *,
        progress: Progress,
        **target: Any,
    ) -> dict[str, Any]:
        """`tool` on `target` with the app the client named brought up around it; the profile and the
        time limit are checked here, inside the call, so that a bad one is a structured error."""
        limit = checked_timeout(timeout_seconds)
        call = AppRun(site.ws, site.profile_for(profile), start_command, wait_url, limit, progress)
        result = await tool(call, **target)
        result.setdefault("files_dir", where_files_go(site.ws))
        return result

    @site.server.tool(
        description="End-to-end tests with Playwright Test on Chromium. Optional `path` (spec file or "
        "directory), `start_command` (started without a shell, stopped at the end) and `wait_url` (polled "
        "until it answers) bring up the app under test. Returns per-test outcomes, failures with file/line/"
        "message, and trace/screenshot paths of failures under .paradise/reports/."
    )
    async def run_e2e(
        ctx: Context,
        path: str | None = None,
        start_command: StartCommand = None,
        wait_url: WaitUrl = None,
        timeout_seconds: TimeoutSeconds = None,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        work = partial(run_app_tool, e2e, profile, start_command, wait_url, timeout_seconds, path=path)
        return await site.invoke("run_e2e", ctx, 1, work, detail, page, run_id=run_id)

    @site.server.tool(
        description="API tests with Newman on a Postman collection (`collection`; default: every "
        "*.postman_collection.json) with an optional `environment` file; `start_command`/`wait_url` bring "
        "up the app. Returns each request (method, URL, status, time) with its assertions' outcomes."
    )
    async def run_api_tests(
        ctx: Context,
        collection: str | None = None,
        environment: str | None = None,
        start_command: StartCommand = None,
        wait_url: WaitUrl = None,
        timeout_seconds: TimeoutSeconds = None,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        target = {"collection": collection, "environment": environment}
        work = partial(run_app_tool, api_tests, profile, start_command, wait_url, timeout_seconds, **target)
        return await site.invoke("run_api_tests", ctx, 1, work, detail, page, run_id=run_id)

    @site.server.tool(
        description="Lighthouse on a local `url` (headless Chromium): performance, accessibility, "
        "best-practices and SEO scores, FCP, LCP, TBT and CLS, the failing audits; the JSON and HTML "
        "reports are saved under .paradise/reports/. `start_command`/`wait_url` bring up the app."
    )
    async def run_performance(
        ctx: Context,
        url: str,
        start_command: StartCommand = None,
        wait_url: WaitUrl = None,
        timeout_seconds: TimeoutSeconds = None,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        work = partial(run_app_tool, performance, profile, start_command, wait_url, timeout_seconds, url=url)
        return await site.invoke("run_performance", ctx, 1, work, detail, page, run_id=run_id)
