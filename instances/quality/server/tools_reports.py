"""MCP registration of the reports layer's tools (quality_report, quality_trends) and list_profiles."""

from __future__ import annotations

from functools import partial
from typing import Any

from mcp.server.mcpserver import Context

from ..core.datadir import where_files_go
from ..core.progress import Progress
from ..impact import risk
from ..reports import reports
from .site import Detail, Page, ProfileName, RunId, Site, ToolResult


def register_report_tools(site: Site) -> None:
    @site.server.tool(
        description="Run a profile (quick, python, comprehensive, ...) and write a report in HTML, JSON "
        "and Markdown under .paradise/reports/ (the instance's state when the workspace cannot be written) with "
        "history.jsonl; returns the score, thresholds, what it could not measure, recommendations and the files."
    )
    async def quality_report(
        ctx: Context,
        profile: ProfileName = None,
        base_ref: str = "HEAD",
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        work = partial(site.on_workspace, reports.quality_report, profile, base_ref=base_ref)
        return await site.invoke("quality_report", ctx, 1, work, detail, page, run_id=run_id)

    @site.server.tool(
        description="Compare the last N quality reports (tests, coverage, findings, score) with "
        "recommendations derived from what got worse."
    )
    async def quality_trends(
        ctx: Context,
        last: int = 5,
        profile: ProfileName = None,
        detail: Detail = "summary",
        page: Page = 1,
        run_id: RunId = None,
    ) -> ToolResult:
        async def work(*, progress: Progress) -> dict[str, Any]:
            result = reports.quality_trends(site.ws, last=last, profile=profile)
            result["risk_backtest"] = await risk.backtest_workspace(site.ws)
            result.setdefault("files_dir", where_files_go(site.ws))
            return result

        return await site.invoke("quality_trends", ctx, 1, work, detail, page, run_id=run_id)

    @site.server.tool(description="The profiles this instance knows: tools, timeouts and thresholds.")
    async def list_profiles(ctx: Context) -> ToolResult:
        async def work(*, progress: Progress) -> dict[str, Any]:
            return {
                "tool": "list_profiles",
                "status": "ok",
                "default": site.profile_for(None).name,
                "workspace": str(site.ws.root),
                "profiles": {n: p.summary() for n, p in site.profiles.items()},
            }

        return await site.invoke("list_profiles", ctx, 1, work)
