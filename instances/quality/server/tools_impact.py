"""MCP registration of the impact layer's tools: analyze_changes and run_impacted_tests."""

from __future__ import annotations

from functools import partial

from mcp.server.mcpserver import Context

from ..impact import impact
from .site import Detail, Page, ProfileName, RunId, Site, ToolResult


def register_impact_tools(site: Site) -> None:
    @site.server.tool(
        description="Changes against a git base ref (default HEAD; working tree, staged and untracked): "
        "changed files and functions, the static import graph, and the tests that import changed "
        "modules directly or transitively, each with its import chain. When the client also has Serena, "
        "impact is narrowed to the test functions that reach the changed functions through references, "
        "with the symbol chains (`serena` in the reply says how, or why not)."
    )
    async def analyze_changes(
        ctx: Context,
        base_ref: str = "HEAD",
        include_edges: bool = False,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        arguments = {"base_ref": base_ref, "include_edges": include_edges}
        work = partial(site.on_workspace, impact.analyze_changes, profile, **arguments)
        return await site.invoke("analyze_changes", ctx, 1, work, detail, page, include_edges, run_id=run_id)

    @site.server.tool(
        description="Run only the tests affected by the changes against `base_ref` (plus changed test "
        "files); falls back to the full suite, and says why, when the import graph cannot decide "
        "(dynamic imports in changed code, conftest.py or configuration changes, no git). With the "
        "client's Serena, only the test functions that reach the changed functions run."
    )
    async def run_impacted_tests(
        ctx: Context,
        base_ref: str = "HEAD",
        coverage: bool = False,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        work = partial(site.on_workspace, impact.run_impacted_tests, profile, base_ref=base_ref, coverage=coverage)
        return await site.invoke("run_impacted_tests", ctx, 2, work, detail, page, run_id=run_id)
