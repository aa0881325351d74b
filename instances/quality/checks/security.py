"""security_scan: bandit for the code; pip-audit and npm audit for declared dependencies."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from ..core.js_packages import node_env, node_tool
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.runner import find_executable, read_bounded_file, run_command
from ..core.toolrun import ToolRun
from ..core.workspace import Workspace, is_test_file

# pip-audit's default vulnerability service is PyPI's per-release JSON API; probing the same kind of
# URL tells whether an audit can work before starting one that would only report "not found".
PYPI_PROBE_INDEX = "https://pypi.org/pypi/pip/json"
PYPI_PROBE_RELEASE = "https://pypi.org/pypi/pip/{version}/json"
_PINNED = re.compile(r"^\s*[A-Za-z0-9_.\-\[\],]+\s*==\s*[^\s;#*]+")
EGRESS_ENV = "PARADISE_INSTANCE_EGRESS"
NETWORK_FIX = (
    "let the instance reach the registries (PARADISE_INSTANCE_EGRESS=registries on the bridge) and, behind a "
    "TLS-inspecting proxy, give it the proxy's CA (NODE_EXTRA_CA_CERTS for npm, SSL_CERT_FILE for pip-audit)"
)


def not_run(scanner: str, code: str, reason: str, fix: str) -> dict[str, Any]:
    """A scanner that was needed but could not run: never "skipped", always the reason and the fix."""
    return {"scanner": scanner, "status": "not_run", "error": {"code": code, "message": reason, "fix": fix}}


def offline_reason() -> str | None:
    """Why no dependency audit can reach its service, known before trying (the instance has no egress)."""
    if os.environ.get(EGRESS_ENV, "").strip().lower() == "none":
        return f"this instance has no network ({EGRESS_ENV}=none): the advisory services cannot be reached"
    return None


def is_test_path(rel: str) -> bool:
    parts = rel.split("/")
    return is_test_file(rel) or parts[-1] == "conftest.py" or any(p in ("tests", "test") for p in parts[:-1])


def parse_bandit_json(data: dict[str, Any], ws: Workspace) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    findings = []
    for item in data.get("results", []):
        cwe = item.get("issue_cwe") or {}
        findings.append(
            {
                "tool": "bandit",
                "file": ws.relative(item.get("filename", "")),
                "line": item.get("line_number"),
                "rule": item.get("test_id"),
                "name": item.get("test_name"),
                "severity": str(item.get("issue_severity", "")).lower(),
                "confidence": str(item.get("issue_confidence", "")).lower(),
                "message": item.get("issue_text", ""),
                "cwe": cwe.get("id"),
                "more_info": item.get("more_info"),
            }
        )
    errors = [
        {"file": ws.relative(e.get("filename", "")), "reason": e.get("reason", "")} for e in data.get("errors", [])
    ]
    return findings, errors


def parse_pip_audit_json(data: dict[str, Any]) -> dict[str, Any]:
    vulns, not_audited = [], []
    for dep in data.get("dependencies", []):
        if dep.get("skip_reason"):
            not_audited.append({"package": dep.get("name"), "reason": dep["skip_reason"]})
        for vuln in dep.get("vulns", []):
            vulns.append(
                {
                    "package": dep.get("name"),
                    "version": dep.get("version"),
                    "id": vuln.get("id"),
                    "aliases": vuln.get("aliases", []),
                    "fix_versions": vuln.get("fix_versions", []),
                    "description": (vuln.get("description") or "")[:500],
                }
            )
    return {"vulnerabilities": vulns, "not_audited": not_audited, "audited": len(data.get("dependencies", []))}


def parse_npm_audit_json(data: dict[str, Any]) -> dict[str, Any]:
    """Findings from `npm audit --json`, or an `unavailable` reason when npm got no answer."""
    if "error" in data or "statusCode" in data:
        message = data.get("message") or (data.get("error") or {}).get("summary") or "npm audit failed"
        return {"status": "unavailable", "reason": f"the npm advisory service did not answer: {message}"}
    vulns = [
        {
            "package": name,
            "severity": info.get("severity"),
            "range": info.get("range"),
            "fix_available": bool(info.get("fixAvailable")),
        }
        for name, info in sorted(data.get("vulnerabilities", {}).items())
    ]
    totals = data.get("metadata", {}).get("vulnerabilities", {})
    return {"status": "ok", "vulnerabilities": vulns, "by_severity": {k: v for k, v in totals.items() if k != "total"}}


def declared_python_requirements(ws: Workspace) -> dict[str, Any]:
    files = sorted(p.name for p in ws.root.glob("requirements*.txt") if p.is_file())
    data, error = ws.pyproject()
    project_deps = list((data or {}).get("project", {}).get("dependencies", []))
    return {"requirements_files": files, "pyproject_dependencies": project_deps, "pyproject_error": error}


def probe_vulnerability_source(timeout: float) -> str | None:
    """None when PyPI's vulnerability data answers within `timeout`, else why it does not."""
    url = PYPI_PROBE_INDEX
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # nosec B310 - fixed https URL
            version = json.loads(response.read(5_000_000))["info"]["version"]
        url = PYPI_PROBE_RELEASE.format(version=version)
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # nosec B310 - fixed https URL
            if "vulnerabilities" not in json.loads(response.read(5_000_000)):
                return f"{url} has no vulnerability data"
    except urllib.error.HTTPError as exc:
        return f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} is not reachable within {timeout:g}s ({reason})"
    except (ValueError, KeyError) as exc:
        return f"{url} did not answer with PyPI JSON ({exc})"
    return None


async def run_bandit(ws: Workspace, profile: Profile, target: str, progress: Progress | None) -> dict[str, Any]:
    rel = target.removeprefix("./")
    prefix = "" if target == "." else rel.rstrip("/") + "/"
    files = [p for p in ws.python_files() if (not prefix or p.startswith(prefix) or p == rel)]
    code_files = [p for p in files if not is_test_path(p)]
    if not code_files:
        return {"scanner": "bandit", "status": "skipped", "reason": "no non-test Python files to scan"}
    bandit = find_executable("bandit", ws.root)
    if bandit is None:
        fix = "install bandit in the quality environment (the `quality` extra has it)"
        return not_run("bandit", "tool_missing", "bandit is not installed", fix)
    timeout = profile.timeout("security")
    data, _ = ws.pyproject()
    config = ["-c", "pyproject.toml"] if data and "bandit" in data.get("tool", {}) else []
    with tempfile.TemporaryDirectory(prefix="paradise-bandit-") as tmpdir:
        out = Path(tmpdir) / "bandit.json"
        argv = [bandit, *config, "-f", "json", "-o", str(out), "-q", *code_files]
        run = await ToolRun(profile, timeout, progress).run(argv, "bandit", ws.root)
        problem = run.problem(timeout)
        text = read_bounded_file(out)
    if problem or not text:
        return {"scanner": "bandit", "status": "error", "duration_s": run.duration_s, "error": run.failure(timeout)}
    findings, errors = parse_bandit_json(json.loads(text), ws)
    return {
        "scanner": "bandit",
        "status": "ok",
        "duration_s": run.duration_s,
        "files_scanned": len(code_files),
        "excluded_test_files": len(files) - len(code_files),
        "findings": findings,
        "file_errors": errors,
    }


async def run_pip_audit(ws: Workspace, profile: Profile) -> dict[str, Any]:
    declared = declared_python_requirements(ws)
    if declared["pyproject_error"] and not declared["requirements_files"]:
        fix = "fix pyproject.toml so that it parses (or list the dependencies in requirements*.txt)"
        return not_run("pip-audit", "unreadable_manifest", declared["pyproject_error"], fix)
    if not declared["requirements_files"] and not declared["pyproject_dependencies"]:
        return {"scanner": "pip-audit", "status": "skipped", "reason": "no declared Python dependencies"}
    unreachable = offline_reason() or await asyncio.to_thread(probe_vulnerability_source, profile.vuln_probe_timeout)
    if unreachable:
        reason = f"vulnerability source unreachable, dependencies NOT audited: {unreachable}"
        return {**not_run("pip-audit", "service_unreachable", reason, NETWORK_FIX), "declared": declared}
    pip_audit = find_executable("pip-audit", ws.root)
    if pip_audit is None:
        fix = "install pip-audit in the quality environment (the `quality` extra has it)"
        return not_run("pip-audit", "tool_missing", "pip-audit is not installed", fix)
    timeout = profile.timeout("dependencies")
    targets: list[list[str]] = []
    for name in declared["requirements_files"]:
        lines = [
            ln
            for ln in (ws.root / name).read_text(errors="replace").splitlines()
            if ln.strip() and not ln.lstrip().startswith(("#", "-"))
        ]
        pinned = all(_PINNED.match(ln) for ln in lines)
        targets.append(["-r", name, *(["--no-deps", "--disable-pip"] if pinned else [])])
    if declared["pyproject_dependencies"]:
        targets.append(["."])
    merged: dict[str, Any] = {"vulnerabilities": [], "not_audited": [], "audited": 0}
    errors = []
    with tempfile.TemporaryDirectory(prefix="paradise-pipaudit-") as tmpdir:
        for index, target in enumerate(targets):
            out = Path(tmpdir) / f"audit{index}.json"
            run = await run_command(
                [
                    pip_audit,
                    *target,
                    "-f",
                    "json",
                    "-o",
                    str(out),
                    "--progress-spinner",
                    "off",
                    "--timeout",
                    str(int(profile.vuln_probe_timeout) + 2),
                ],
                cwd=ws.root,
                timeout=timeout,
                max_output=profile.max_output_bytes,
            )
            text = read_bounded_file(out)
            if not text:
                errors.append({"target": " ".join(target), "message": run.problem(timeout) or run.tail(6)})
                continue
            parsed = parse_pip_audit_json(json.loads(text))
            for key in ("vulnerabilities", "not_audited"):
                merged[key] += parsed[key]
            merged["audited"] += parsed["audited"]
    status = "error" if errors and len(errors) == len(targets) else ("partial" if errors else "ok")
    return {"scanner": "pip-audit", "status": status, "declared": declared, "errors": errors, **merged}


async def run_npm_audit(ws: Workspace, profile: Profile) -> dict[str, Any] | None:
    lockfiles = [n for n in ("package-lock.json", "npm-shrinkwrap.json") if (ws.root / n).is_file()]
    if not lockfiles:
        return None
    npm = node_tool("npm", ws.root)
    if npm is None:
        fix = "install the bundled Node toolchain (npm ci --prefix instances/quality/node)"
        return not_run("npm-audit", "tool_missing", "npm is not installed", fix)
    offline = offline_reason()
    if offline:
        return {**not_run("npm-audit", "service_unreachable", offline, NETWORK_FIX), "lockfile": lockfiles[0]}
    timeout = profile.timeout("dependencies")
    # One retry and a bounded wait: offline, npm fails at once (ENOTFOUND) and that is reported.
    argv = [
        npm,
        "audit",
        "--json",
        "--fetch-retries=1",
        "--fetch-timeout=30000",
        "--fetch-retry-mintimeout=1000",
        "--fetch-retry-maxtimeout=2000",
    ]
    if not (ws.root / "node_modules").is_dir():
        argv.append("--package-lock-only")  # audit what the lockfile pins; nothing is installed
    run = await run_command(argv, cwd=ws.root, timeout=timeout, max_output=profile.max_output_bytes, env=node_env())
    problem = run.problem(timeout)
    try:
        data = json.loads(run.stdout) if run.stdout.strip() else None
    except json.JSONDecodeError:
        data = None
    if problem or not isinstance(data, dict):
        error = run.failure(timeout, f"npm audit gave no JSON: {run.tail(6)}")
        return {"scanner": "npm-audit", "status": "error", "lockfile": lockfiles[0], "error": error}
    parsed = parse_npm_audit_json(data)
    if parsed["status"] == "unavailable":
        return {**not_run("npm-audit", "service_unreachable", parsed["reason"], NETWORK_FIX), "lockfile": lockfiles[0]}
    return {"scanner": "npm-audit", "lockfile": lockfiles[0], **parsed}


def _status(sections: dict[str, Any]) -> tuple[str, list[dict[str, str]], list[dict[str, str]]]:
    """ok / partial (a scanner did not apply) / incomplete (a needed scanner could not run, others did) /
    error (none of the needed scanners ran) / skipped (none applied: nothing to scan)."""
    skipped = [{"what": n, "reason": s["reason"]} for n, s in sections.items() if s["status"] == "skipped"]
    errors = [{"what": n, **s["error"]} for n, s in sections.items() if s["status"] in ("error", "not_run")]
    ran = [s for s in sections.values() if s["status"] in ("ok", "partial")]
    if errors:
        return ("incomplete" if ran else "error"), skipped, errors
    if not ran:
        return "skipped", skipped, errors
    return ("partial" if skipped or len(ran) < len(sections) else "ok"), skipped, errors


async def security_scan(
    ws: Workspace,
    profile: Profile,
    *,
    path: str | None = None,
    include_dependencies: bool = True,
    include_code: bool = True,
    javascript: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    target = ws.target(path)
    sections: dict[str, Any] = {}
    if include_code:
        sections["bandit"] = await run_bandit(ws, profile, target, progress)
    if include_dependencies:
        if progress:
            await progress.step(1, "auditing declared dependencies")
        sections["pip-audit"] = await run_pip_audit(ws, profile)
        if javascript:
            npm = await run_npm_audit(ws, profile)
            if npm is not None:
                sections["npm-audit"] = npm
    findings = sections["bandit"].pop("findings", []) if "bandit" in sections else []
    status, skipped, errors = _status(sections)
    result: dict[str, Any] = {"tool": "security_scan", "status": status}
    if errors:
        what = "; ".join(f"{e['what']}: {e['message']}" for e in errors)
        result["error"] = {"code": "check_not_run", "message": f"not every check could run: {what}"}
        result["error"]["fix"] = "; ".join(dict.fromkeys(e["fix"] for e in errors if e.get("fix"))) or None
    return {
        **result,
        "counts": {
            "total": len(findings),
            "by_severity": dict(Counter(f["severity"] for f in findings)),
            "by_rule": dict(sorted(Counter(f["rule"] for f in findings).items())),
            "dependency_vulnerabilities": sum(len(s.get("vulnerabilities", [])) for s in sections.values()),
        },
        "findings": findings[: profile.max_findings],
        "findings_truncated": len(findings) > profile.max_findings,
        "skipped": skipped,
        "errors": errors,
        "scanners": sections,
    }
