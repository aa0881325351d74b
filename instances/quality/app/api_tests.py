"""run_api_tests: Newman on a Postman collection (optional environment), with the app under test
brought up by start_command/wait_url.  Results per request (method, URL, status code, time) with each
assertion's outcome, from Newman's JSON reporter."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ..core.js_packages import node_env, node_tool, tool_version
from ..core.runner import read_bounded_file
from ..core.workspace import Workspace
from ..testing.testparse import empty_counts, mark_failures
from .appserver import AppRun

COLLECTION_SUFFIX = ".postman_collection.json"
_MAX_COLLECTIONS = 10
_REQUEST_TIMEOUT_MS = 15000


def find_collections(ws: Workspace) -> list[str]:
    return [p for p in ws.files((COLLECTION_SUFFIX,)) if p.endswith(COLLECTION_SUFFIX)][:_MAX_COLLECTIONS]


def _url(request: dict[str, Any]) -> str | None:
    url = request.get("url")
    if isinstance(url, str):
        return url
    if isinstance(url, dict):
        host = url.get("host")
        host = ".".join(host) if isinstance(host, list) else host
        path = url.get("path")
        path = "/".join(path) if isinstance(path, list) else path
        port = f":{url['port']}" if url.get("port") else ""
        return url.get("raw") or f"{url.get('protocol', 'http')}://{host}{port}/{path or ''}"
    return None


def parse_newman_report(data: dict[str, Any], collection: str) -> dict[str, Any]:
    """Requests with their assertions, and counts where one test is one assertion (a request that
    got no response counts as an error)."""
    run = data.get("run") or {}
    counts = empty_counts()
    requests: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for execution in run.get("executions", []):
        item = execution.get("item") or {}
        request = execution.get("request") or {}
        response = execution.get("response") or {}
        name = item.get("name") or "request"
        entry = {
            "collection": collection,
            "name": name,
            "method": request.get("method"),
            "url": _url(request),
            "status_code": response.get("code"),
            "response_time_ms": response.get("responseTime"),
            "assertions": [],
        }
        error = execution.get("requestError")
        if error:
            counts["total"] += 1
            counts["errors"] += 1
            message = error.get("message") if isinstance(error, dict) else str(error)
            entry["error"] = message
            failures.append({"test": f"{collection}::{name}", "kind": "error", "message": message, "request": name})
        for assertion in execution.get("assertions", []):
            counts["total"] += 1
            failed = assertion.get("error")
            skipped = assertion.get("skipped")
            outcome = "skipped" if skipped else ("failed" if failed else "passed")
            counts[outcome] += 1
            entry["assertions"].append(
                {"assertion": assertion.get("assertion"), "outcome": outcome, "message": (failed or {}).get("message")}
            )
            if failed:
                failures.append(
                    {
                        "test": f"{collection}::{name}::{assertion.get('assertion')}",
                        "kind": "failed",
                        "request": name,
                        "message": failed.get("message"),
                    }
                )
        requests.append(entry)
    stats = run.get("stats") or {}
    return {"counts": counts, "requests": requests, "failures": failures, "stats": stats}


async def run_api_tests(call: AppRun, collection: str | None = None, environment: str | None = None) -> dict[str, Any]:
    ws, tool = call.ws, call.tool("api")
    collections = [ws.resolve(collection).relative_to(ws.root).as_posix()] if collection else find_collections(ws)
    env_file = ws.resolve(environment).relative_to(ws.root).as_posix() if environment else None
    result: dict[str, Any] = {"tool": "run_api_tests", "status": "ok", "counts": empty_counts(), "failures": []}
    if not collections:
        result.update(status="skipped", reason=f"no collection given and no *{COLLECTION_SUFFIX} in the workspace")
        return result
    newman = node_tool("newman", ws.root)
    if newman is None:
        result.update(status="error", error={"code": "tool_missing", "message": "newman is not installed"})
        return result
    result.update(version=tool_version(newman), collections=collections, environment=env_file, requests=[])
    runs: list[dict[str, Any]] = []
    async with call.app(tool, result, "Newman"):
        with tempfile.TemporaryDirectory(prefix="paradise-newman-") as tmpdir:
            for index, name in enumerate(collections):
                out = Path(tmpdir) / f"newman{index}.json"
                argv = [newman, "run", name, "--reporters", "json", "--reporter-json-export", str(out)]
                argv += ["--timeout-request", str(_REQUEST_TIMEOUT_MS), "--disable-unicode", "--color", "off"]
                if env_file:
                    argv += ["-e", env_file]
                run = await tool.run(argv, f"newman {name}", ws.root, node_env())
                text = read_bounded_file(out)
                if not text:
                    why = run.problem(tool.timeout, "newman") or f"newman wrote no report: {run.tail(8)}"
                    runs.append({"collection": name, "status": "error", "error": why})
                    continue
                parsed = parse_newman_report(json.loads(text), name)
                runs.append({"collection": name, "status": "ok", "duration_s": run.duration_s, **parsed})
    for part in runs:
        for key, value in (part.get("counts") or {}).items():
            result["counts"][key] += value
        result["failures"] += part.get("failures", [])
        result["requests"] += part.get("requests", [])
    result["runs"] = [{k: v for k, v in r.items() if k not in ("requests", "failures")} for r in runs]
    broken = [r for r in runs if r["status"] == "error"]
    if broken:
        result["errors"] = [{"what": r["collection"], "message": r["error"]} for r in broken]
        result["status"] = "error" if len(broken) == len(runs) else "partial"
        if result["status"] == "error":
            result["error"] = {"code": "run_failed", "message": broken[0]["error"]}
    return mark_failures(result)


__all__ = ["find_collections", "parse_newman_report", "run_api_tests"]
