"""quality_report's app-level steps (e2e, api, performance): the profile's settings for each, or what
the workspace has (a Playwright config or e2e/ directory, Postman collections); a step with nothing to
run says why and is left out of the score."""

from __future__ import annotations

from typing import Any

from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.workspace import Workspace
from .api_tests import find_collections, run_api_tests
from .appserver import AppRun
from .e2e import require_config_or_specs, run_e2e
from .performance import run_performance


async def run_app_step(step: str, ws: Workspace, profile: Profile, progress: Progress | None) -> dict[str, Any]:
    settings = dict(profile.apps.get(step, {}))
    configured = bool(settings)
    call = AppRun(ws, profile, settings.pop("start_command", None), settings.pop("wait_url", None), progress=progress)
    if step == "e2e":
        missing = None if configured else require_config_or_specs(ws)
        if missing:
            return {"tool": "run_e2e", "status": "skipped", "reason": missing}
        return await run_e2e(call, **settings)
    if step == "api":
        if not settings.get("collection") and not find_collections(ws):
            return {"tool": "run_api_tests", "status": "skipped", "reason": "no *.postman_collection.json"}
        return await run_api_tests(call, **settings)
    if not settings.get("url"):
        return {
            "tool": "run_performance",
            "status": "skipped",
            "reason": f"no URL to measure: set [profiles.{profile.name}.performance] url (and start_command)",
        }
    return await run_performance(call, **settings)
