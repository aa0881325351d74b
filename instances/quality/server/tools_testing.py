"""MCP registration of the testing layer's tool: run_tests (pytest, jest, vitest)."""

from __future__ import annotations

from functools import partial

from mcp.server.mcpserver import Context

from ..testing import tests_tool
from .site import Detail, Page, ProfileName, RunId, Site, TimeoutSeconds, ToolResult


def register_testing_tools(site: Site) -> None:
    @site.server.tool(
        description="Run the test suites (pytest with coverage; jest/vitest in every package.json that declares them). "
        "Optional `path` (file or directory in the workspace) and `keyword` (-k / -t, a literal piece of a test's "
        "name for jest/vitest) filters; `tests` runs exactly the tests with these ids ('file::name' as a reply "
        "gives them, or a file). A run that runs no test is an error saying why. "
        "Returns counts, each failure with file/line/message, and line/branch coverage per file. "
        "pytest runs in parallel where it pays, split by file over several pytest processes (`workers`: a "
        "count or 'auto'; 0 or 1 for serial), previously failed and slowest tests first; `max_failures` "
        "stops early; `plan` says what ran where and why."
    )
    async def run_tests(
        ctx: Context,
        path: str | None = None,
        keyword: str | None = None,
        tests: list[str] | None = None,
        coverage: bool | None = None,
        timeout_seconds: TimeoutSeconds = None,
        workers: int | str | None = None,
        max_failures: int | None = None,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        filters = {"path": path, "keyword": keyword, "tests": tests, "coverage": coverage}
        limits = {"timeout": timeout_seconds, "workers": workers, "max_failures": max_failures}
        work = partial(site.on_workspace, tests_tool.run_tests, profile, **filters, **limits)
        return await site.invoke("run_tests", ctx, 1, work, detail, page, run_id=run_id)
