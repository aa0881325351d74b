"""The quality MCP server: tool registration.  Each tool returns structured JSON plus a short text
summary; bad input becomes a structured error (status "error"), never a crashed server."""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from . import impact, lint, reports, risk, security, tests_tool
from .datadir import permission_error
from .errors import QualityError
from .jobs import UNTRACKED, JobRegistry
from .js.tools_server import Detail, Page, ProfileName, RunId, TimeoutSeconds, ToolResult, register_js_tools
from .profiles import Profile, pick_profile
from .progress import Progress
from .runstore import RunStore
from .sizing import Sizing, build_reply
from .workspace import Workspace

log = logging.getLogger("instances.quality")
WorkspaceTool = Callable[..., Awaitable[dict[str, Any]]]
"""A tool's body: `body(ws, profile, *, progress, **arguments)` -> its result."""

INSTRUCTIONS = (
    "Quality tools for one workspace: run_tests (pytest/jest/vitest with coverage), lint (ruff/eslint/prettier), "
    "run_e2e (Playwright), run_api_tests (Newman), run_performance (Lighthouse), "
    "security_scan (bandit, pip-audit, npm audit), analyze_changes (git diff, changed functions, import "
    "graph, impacted tests), run_impacted_tests, quality_report (writes HTML/JSON/Markdown reports under "
    "the workspace's .paradise/, or the instance's state when the workspace is read-only) and "
    "quality_trends.  Results are structured JSON; `status` is ok, partial (something was skipped: see "
    "`skipped`), incomplete (a check could not run: see `errors`), skipped (nothing to do) or error.  Every "
    "result has a `run_id`; replies stay under 40 KB: `more` lists what was shortened; call again with "
    "run_id and page=N or detail='full' for the rest, read from that run without running anything again."
)


async def invoke_tool(
    tool: str,
    ctx: Context | None,
    steps: int,
    work: Callable[..., Awaitable[dict[str, Any]]],
    detail: str | None = None,
    page: int | None = None,
    include_edges: bool = False,
    *,
    jobs: JobRegistry | None = None,
    runs: RunStore | None = None,
    run_id: str | None = None,
) -> CallToolResult:
    """Run one tool body, `work(progress=…)`, turning every failure into a structured result, and size
    the reply (sizing.py: under 40 KB unless `detail`/`page` ask for more). The call is a job in `jobs` (the
    dashboard's view) from start to end, fed by the same progress values the MCP client gets. With `run_id`,
    or a page after the first, the reply is read from the kept run (runstore.py) and nothing runs."""
    kept = None
    if runs is not None and (run_id or (isinstance(page, int) and page > 1)):
        try:
            kept = runs.get(tool, run_id) if run_id else runs.last(tool)
        except QualityError as exc:
            result = {"tool": tool, "status": "error", "error": exc.as_dict()}
            return _reply(tool, result, Sizing(), include_edges)
    if kept is not None:
        try:
            sizing = Sizing.parse(detail, page)
        except QualityError as exc:
            return _reply(tool, {"tool": tool, "status": "error", "error": exc.as_dict()}, Sizing(), include_edges)
        return _reply(tool, runs.replay(kept), sizing, include_edges)  # type: ignore[union-attr]
    job = jobs.begin(tool) if jobs is not None and tool not in UNTRACKED else None
    progress = Progress(ctx.report_progress if ctx is not None else None, steps, job.update if job else None)
    sizing = Sizing()
    result: dict[str, Any] | None = None
    try:
        try:
            sizing = Sizing.parse(detail, page)
            result = await work(progress=progress)
        except QualityError as exc:
            result = {"tool": tool, "status": "error", "error": exc.as_dict()}
        except OSError as exc:
            result = _os_error(tool, exc)
        except Exception as exc:
            log.exception("tool %s failed", tool)
            result = {
                "tool": tool,
                "status": "error",
                "error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"},
            }
        result = reports.public(result)
        if runs is not None:  # every result, even a profile listing, has its run_id
            result["run_id"] = runs.new_id(tool)
            result["run_kept"] = runs.keep(result["run_id"], tool, result)
        await progress.done(f"{tool} finished")
    finally:  # a cancelled call (the client went away) ends its job too, as "cancelled"
        if job is not None and jobs is not None:
            jobs.finish(job, result)
    return _reply(tool, result, sizing, include_edges)


def _os_error(tool: str, exc: OSError) -> dict[str, Any]:
    """A file the tool could not write is a structured error with the path and the fix; any other OS
    error is still an internal error (logged)."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return {"tool": tool, "status": "error", "error": permission_error(exc)}
    log.exception("tool %s failed", tool)
    return {
        "tool": tool,
        "status": "error",
        "error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"},
    }


def _reply(tool: str, result: dict[str, Any], sizing: Sizing, include_edges: bool) -> CallToolResult:
    text, sized = build_reply(tool, result, sizing, include_edges=include_edges)
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=sized,
        is_error=result.get("status") == "error",
    )


def build_server(ws: Workspace, profiles: dict[str, Profile], default_profile: str | None = None) -> MCPServer:
    """The MCP server for one workspace; `default_profile` applies when a call names no profile."""
    server = MCPServer("paradise-quality", instructions=INSTRUCTIONS, version="0.1.0")
    fallback = pick_profile(profiles, default_profile).name
    try:
        jobs = JobRegistry(reports.report_dir(ws))
    except QualityError:  # nowhere to write: the dashboard's view stays in memory
        jobs = JobRegistry(None)
    invoke = partial(invoke_tool, jobs=jobs, runs=RunStore())

    def profile_for(name: str | None) -> Profile:
        return pick_profile(profiles, name or fallback)

    async def on_workspace(
        body: WorkspaceTool, profile: str | None, *, progress: Progress, **arguments: Any
    ) -> dict[str, Any]:
        """`body` on this workspace; the profile is looked up here, inside the call, so that an unknown
        name is a structured error like any other bad argument."""
        return await body(ws, profile_for(profile), progress=progress, **arguments)

    @server.tool(
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
        work = partial(on_workspace, tests_tool.run_tests, profile, **filters, **limits)
        return await invoke("run_tests", ctx, 1, work, detail, page, run_id=run_id)

    @server.tool(
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
        work = partial(on_workspace, lint.lint, profile, path=path)
        return await invoke("lint", ctx, 1, work, detail, page, run_id=run_id)

    @server.tool(
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
        work = partial(
            on_workspace, security.security_scan, profile, path=path, include_dependencies=include_dependencies
        )
        return await invoke("security_scan", ctx, 2, work, detail, page, run_id=run_id)

    @server.tool(
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
        work = partial(on_workspace, impact.analyze_changes, profile, base_ref=base_ref, include_edges=include_edges)
        return await invoke("analyze_changes", ctx, 1, work, detail, page, include_edges, run_id=run_id)

    @server.tool(
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
        work = partial(on_workspace, impact.run_impacted_tests, profile, base_ref=base_ref, coverage=coverage)
        return await invoke("run_impacted_tests", ctx, 2, work, detail, page, run_id=run_id)

    @server.tool(
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
        work = partial(on_workspace, reports.quality_report, profile, base_ref=base_ref)
        return await invoke("quality_report", ctx, 1, work, detail, page, run_id=run_id)

    @server.tool(
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
            result = reports.quality_trends(ws, last=last, profile=profile)
            result["risk_backtest"] = await risk.backtest_workspace(ws)
            return result

        return await invoke("quality_trends", ctx, 1, work, detail, page, run_id=run_id)

    @server.tool(description="The profiles this instance knows: tools, timeouts and thresholds.")
    async def list_profiles(ctx: Context) -> ToolResult:
        async def work(*, progress: Progress) -> dict[str, Any]:
            return {
                "tool": "list_profiles",
                "status": "ok",
                "default": profile_for(None).name,
                "workspace": str(ws.root),
                "profiles": {n: p.summary() for n, p in profiles.items()},
            }

        return await invoke("list_profiles", ctx, 1, work)

    register_js_tools(server, ws, profile_for, invoke)  # run_e2e, run_api_tests, run_performance

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "quality", "workspace": str(ws.root)})

    # For the bridge's dashboard; behind the instance key like everything else (__main__.py wraps the app).
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

    return server
