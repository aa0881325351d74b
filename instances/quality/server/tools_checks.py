"""MCP registration of the checks layer's tools: lint and security_scan."""

from __future__ import annotations

from functools import partial

from mcp.server.mcpserver import Context

from ..checks import lint, security
from .site import Detail, Page, ProfileName, RunId, Site, ToolResult


def register_check_tools(site: Site) -> None:
    @site.server.tool(
        name="lint",
        description="Lint the workspace: ruff (Python), eslint (the workspace's config, else a default), "
        "prettier --check (JS/TS) and tsc --noEmit where a tsconfig.json exists. Findings carry "
        "file, line, rule, message, severity; counts per rule and severity.",
    )
    async def lint_tool(
        ctx: Context,
        path: str | None = None,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        work = partial(site.on_workspace, lint.lint, profile, path=path)
        return await site.invoke("lint", ctx, 1, work, detail, page, run_id=run_id)

    @site.server.tool(
        description="Security scan: bandit for Python code (tests excluded); pip-audit for declared "
        "Python dependencies when the vulnerability source is reachable; npm audit where a lockfile "
        "exists. Unreachable sources are reported, never silently passed."
    )
    async def security_scan(
        ctx: Context,
        path: str | None = None,
        include_dependencies: bool = True,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        arguments = {"path": path, "include_dependencies": include_dependencies}
        work = partial(site.on_workspace, security.security_scan, profile, **arguments)
        return await site.invoke("security_scan", ctx, 2, work, detail, page, run_id=run_id)
