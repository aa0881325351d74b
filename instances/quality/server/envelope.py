"""The envelope every tool call goes through: the call is a job (the dashboard's view), its progress goes
to the MCP client, every failure becomes a structured result (a permission problem names the path and
the fix; only the unexpected is `internal_error`), the result is kept under a `run_id` and the reply is
sized.  A call naming a kept run (or a later page) is read back from it and runs nothing."""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent

from ..core.datadir import permission_error
from ..core.errors import QualityError
from ..core.jobs import UNTRACKED, JobRegistry
from ..core.progress import Progress
from ..reports.reports import public
from .runstore import RunStore
from .sizing import Sizing, build_reply

log = logging.getLogger("instances.quality")


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
    a page after the first or `detail='full'`, the reply is read from the kept run (`run_id`, else the tool's
    last run; runstore.py) and nothing runs; only a tool with no kept run yet runs."""
    kept = None
    asked = call_arguments(work)
    if runs is not None and (run_id or (isinstance(page, int) and page > 1) or detail == "full"):
        try:
            kept = runs.get(tool, run_id) if run_id else runs.last(tool, asked)
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
            result = _internal_error(tool, exc)
        result = public(result)
        if runs is not None:  # every result, even a profile listing, has its run_id
            result["run_id"] = runs.new_id(tool)
            result["run_kept"] = runs.keep(result["run_id"], tool, result, asked)
        await progress.done(f"{tool} finished")
    finally:  # a cancelled call (the client went away) ends its job too, as "cancelled"
        if job is not None and jobs is not None:
            jobs.finish(job, result)
    return _reply(tool, result, sizing, include_edges)


def call_arguments(work: Callable[..., Any]) -> dict[str, Any]:
    """The arguments a tool body was bound with (site.py binds them with functools.partial): what a later
    `detail='full'` or page call is compared with before it is answered from the kept run."""
    keywords = getattr(work, "keywords", None) or {}
    simple = (str, int, float, bool, list, tuple, type(None))
    return {k: v for k, v in keywords.items() if isinstance(v, simple)}


def _os_error(tool: str, exc: OSError) -> dict[str, Any]:
    """A file the tool could not write is a structured error with the path and the fix; any other OS
    error is still an internal error (logged)."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return {"tool": tool, "status": "error", "error": permission_error(exc)}
    return _internal_error(tool, exc)


def _internal_error(tool: str, exc: BaseException) -> dict[str, Any]:
    log.exception("tool %s failed", tool)
    message = f"{type(exc).__name__}: {exc}"
    return {"tool": tool, "status": "error", "error": {"code": "internal_error", "message": message}}


def _reply(tool: str, result: dict[str, Any], sizing: Sizing, include_edges: bool) -> CallToolResult:
    text, sized = build_reply(tool, result, sizing, include_edges=include_edges)
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=sized,
        is_error=result.get("status") == "error",
    )
