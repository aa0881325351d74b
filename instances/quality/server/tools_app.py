"""MCP registration of run_e2e, run_api_tests and run_performance (kept out of server.py, which
passes in its `invoke` wrapper so these tools share the envelope: status, sizing, progress, errors).
The parameter types every tool shares live here too, as server.py imports this module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from ..errors import checked_timeout
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

# Parameters most tools take, with the descriptions that go into each tool's input schema. `detail` is a
# plain string on purpose: sizing.py turns a wrong value into a structured bad_argument error.
ProfileName = Annotated[
    str | None, Field(description="Profile to run with (list_profiles names them); default: the instance's.")
]
Detail = Annotated[
    str, Field(description="'summary' keeps the reply under 40 KB; 'full' returns every item (up to ~1 MB).")
]
Page = Annotated[
    int,
    Field(
        description="Which page of the lists a reply shortened (see `more`); a page after the first is read "
        "from the kept run (`run_id`, default this tool's last run), without running again."
    ),
]
RunId = Annotated[
    str | None,
    Field(
        description="A kept run's id (every reply has one): `page`/`detail` are then read from that run, "
        "and nothing runs again."
    ),
]
StartCommand = Annotated[
    str | None, Field(description="Starts the app under test (run without a shell, stopped at the end).")
]
WaitUrl = Annotated[
    str | None, Field(description="A URL on this machine (127.0.0.1, localhost), polled until it answers.")
]
TimeoutSeconds = Annotated[
    float | None, Field(description="Time limit of the call in seconds (up to 86400); default: the profile's.")
]


def register_js_tools(
    server: MCPServer, ws: Workspace, profile_for: Callable[[str | None], Profile], invoke: Invoke
) -> None:
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
        call = AppRun(ws, profile_for(profile), start_command, wait_url, checked_timeout(timeout_seconds), progress)
        return await tool(call, **target)

    @server.tool(
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
        return await invoke("run_e2e", ctx, 1, work, detail, page)

    @server.tool(
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
        return await invoke("run_api_tests", ctx, 1, work, detail, page, run_id=run_id)

    @server.tool(
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
        return await invoke("run_performance", ctx, 1, work, detail, page, run_id=run_id)
