"""run_performance: Lighthouse on a URL of the app under test (headless system Chromium, no network
besides the app): category scores, the core metrics (FCP, LCP, TBT, CLS, plus Speed Index and TTI
where measured) and the JSON and HTML reports saved under .paradise/reports/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.datadir import sub_dir
from ..core.js_packages import node_env, tool_version
from ..core.runner import read_bounded_file
from .appserver import AppRun, loopback_url
from .e2e import REPORTS, browser_tool, stamp

CHROME_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update "
    "--no-first-run --disable-dev-shm-usage"
)
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
METRICS = {
    "first-contentful-paint": "fcp_ms",
    "largest-contentful-paint": "lcp_ms",
    "total-blocking-time": "tbt_ms",
    "cumulative-layout-shift": "cls",
    "speed-index": "speed_index_ms",
    "interactive": "tti_ms",
}


def parse_lighthouse_report(data: dict[str, Any]) -> dict[str, Any]:
    """Scores 0-100 per category, the metrics' numeric values and the failing audits of the run."""
    categories = data.get("categories") or {}
    scores = {
        name: (round(100 * cat["score"]) if isinstance(cat.get("score"), int | float) else None)
        for name, cat in categories.items()
    }
    audits = data.get("audits") or {}
    metrics: dict[str, Any] = {}
    for audit, key in METRICS.items():
        value = (audits.get(audit) or {}).get("numericValue")
        metrics[key] = round(value, 4 if key == "cls" else 1) if isinstance(value, int | float) else None
    failing = sorted(
        (
            {"audit": name, "title": a.get("title"), "score": a.get("score"), "display": a.get("displayValue")}
            for name, a in audits.items()
            if isinstance(a.get("score"), int | float)
            and a["score"] < 0.9
            and a.get("scoreDisplayMode") != "informative"
        ),
        key=lambda a: (a["score"], a["audit"]),
    )
    runtime_error = data.get("runtimeError") or {}
    return {
        "scores": scores,
        "metrics": metrics,
        "failing_audits": failing[:30],
        "final_url": data.get("finalDisplayedUrl") or data.get("finalUrl"),
        "warnings": [str(w) for w in data.get("runWarnings", [])][:10],
        "runtime_error": runtime_error.get("message"),
    }


async def run_performance(call: AppRun, url: str) -> dict[str, Any]:
    loopback_url(url, "url")
    ws, tool = call.ws, call.tool("performance")
    result: dict[str, Any] = {"tool": "run_performance", "status": "ok", "url": url}
    found = browser_tool("lighthouse", "lighthouse", ws)
    if isinstance(found, dict):
        result.update(status="error", error=found)
        return result
    lighthouse, chromium = found
    directory = sub_dir(ws, REPORTS)
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"lighthouse-{stamp()}"
    result["version"] = tool_version(lighthouse)
    async with call.app(tool, result, "Lighthouse", default_wait_url=url):
        argv = [
            lighthouse,
            url,
            "--output=json",
            "--output=html",
            f"--output-path={base}",
            f"--chrome-flags={CHROME_FLAGS}",
            f"--only-categories={','.join(CATEGORIES)}",
            "--quiet",
            "--no-enable-error-reporting",
        ]
        run = await tool.run(argv, "lighthouse", ws.root, node_env({"CHROME_PATH": chromium}))
    result.update(duration_s=run.duration_s, exit_code=run.returncode, timed_out=run.timed_out)
    json_path, html_path = Path(f"{base}.report.json"), Path(f"{base}.report.html")
    text = read_bounded_file(json_path)
    if not text:
        error = run.failure(tool.timeout, f"lighthouse wrote no report: {run.tail(10)}", "lighthouse")
        result.update(status="partial" if run.timed_out else "error", error=error)
        return result
    parsed = parse_lighthouse_report(json.loads(text))
    result.update(parsed)
    result["files"] = {
        kind: ws.relative(str(path)) for kind, path in (("json", json_path), ("html", html_path)) if path.is_file()
    }
    scores = [s for s in parsed["scores"].values() if s is not None]
    result["counts"] = {
        "categories": len(parsed["scores"]),
        "scored": len(scores),
        "failing_audits": len(parsed["failing_audits"]),
    }
    if parsed["runtime_error"]:
        result.update(status="error", error={"code": "page_failed", "message": parsed["runtime_error"]})
    elif len(scores) < len(parsed["scores"]):
        result["status"] = "partial"
    return result
