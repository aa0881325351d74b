"""run_tests' JavaScript part: which package/runner pairs a call runs (a monorepo runs each), their
sections, and coverage merged across languages (totals weighted by each side's own line counts)."""

from __future__ import annotations

from typing import Any

from ..core.js_packages import JsPackage, find_packages
from ..core.profiles import Profile
from ..core.progress import Progress
from ..core.workspace import Workspace
from .js_runners import run_js_runner
from .js_select import NameFilter


def section_key(pkg: JsPackage, runner: str) -> str:
    """`jest` for the workspace root's package, `vitest:packages/web` for a package in a subdirectory."""
    return runner if not pkg.rel else f"{runner}:{pkg.rel}"


def runner_packages(packages: list[JsPackage]) -> list[JsPackage]:
    return [p for p in packages if p.runners]


def innermost_runner_package(packages: list[JsPackage], rel_path: str) -> JsPackage | None:
    owners = [p for p in runner_packages(packages) if p.owns(rel_path)]
    return max(owners, key=lambda p: len(p.rel), default=None)


def plan_for_path(packages: list[JsPackage], rel: str | None) -> list[tuple[JsPackage, str | None]]:
    """(package, package-relative filter or None) for every package a `run_tests(path=rel)` covers:
    all of them without a path; the innermost one holding a path inside a package; every package
    below a directory."""
    with_runners = runner_packages(packages)
    if not rel or rel == ".":
        return [(p, None) for p in with_runners]
    if rel.endswith(".py"):
        return []
    plan: list[tuple[JsPackage, str | None]] = []
    owner = innermost_runner_package(packages, rel)
    if owner is not None:
        inner = rel[len(owner.prefix()) :] if owner.rel else rel
        plan.append((owner, None if rel == owner.rel else inner))
    plan += [(p, None) for p in with_runners if p is not owner and p.rel.startswith(rel.rstrip("/") + "/")]
    return plan


async def run_js_tests(
    ws: Workspace,
    profile: Profile,
    *,
    path: str | None = None,
    keyword: str | None = None,
    coverage: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    workers: int | str | None = None,
    max_failures: int | None = None,
) -> dict[str, dict[str, Any]]:
    """One section per package and declared runner (none when the workspace declares no runner)."""
    limits = {"workers": workers, "max_failures": max_failures}
    rel = ws.resolve(path).relative_to(ws.root).as_posix() if path else None
    packages = find_packages(ws)
    sections: dict[str, dict[str, Any]] = {}
    for pkg in packages:
        if pkg.error:
            fix = f"fix {pkg.prefix()}package.json so that it parses"
            sections[f"package:{pkg.label}"] = {  # its tests could not run: an error, never "skipped"
                "runner": "package.json",
                "package": pkg.label,
                "status": "error",
                "error": {"code": "unreadable_manifest", "message": pkg.error, "fix": fix},
            }
    for pkg, filter_path in plan_for_path(packages, rel):
        for runner in pkg.runners:
            sections[section_key(pkg, runner)] = await run_js_runner(
                ws,
                pkg,
                runner,
                profile,
                filter_path=filter_path,
                name_filter=NameFilter(keyword=keyword),
                coverage=coverage,
                timeout=timeout,
                progress=progress,
                **limits,
            )
    return sections


async def run_js_ids(
    ws: Workspace, profile: Profile, ids: list[tuple[str, str | None]], **options: Any
) -> dict[str, dict[str, Any]]:
    """Exactly the tests `ids` name ((workspace-relative file, full name or None for the whole file)):
    one run per package and runner, given those files and an anchored, escaped `-t` of those names."""
    packages = find_packages(ws)
    groups: dict[str, dict[str, Any]] = {}
    for file, name in ids:
        pkg = innermost_runner_package(packages, file)
        if pkg is None:
            continue
        group = groups.setdefault(pkg.label, {"pkg": pkg, "files": {}, "names": [], "whole": False})
        group["files"][file[len(pkg.prefix()) :]] = None
        group["whole"] = group["whole"] or name is None
        group["names"] += [name] if name is not None else []
    sections: dict[str, dict[str, Any]] = {}
    for group in groups.values():
        pkg = group["pkg"]
        # a whole file asked for alongside named tests of the package: the files run whole
        name_filter = NameFilter() if group["whole"] else NameFilter(names=group["names"])
        for runner in pkg.runners:
            sections[section_key(pkg, runner)] = await run_js_runner(
                ws, pkg, runner, profile, files=list(group["files"]), name_filter=name_filter, **options
            )
    return sections


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for key in ("lines_total", "lines_covered", "branches_total", "branches_covered"):
        total[key] = total.get(key, 0) + int(part.get(key, 0))


def _percent(covered: int, total: int) -> float:
    return round(100.0 * covered / total, 2) if total else 100.0


def merge_coverage(sections: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """One coverage result for every runner that measured: files from all, totals summed (so each
    language counts by its own number of lines), and each language's own total under `by_language`."""
    measured = [(name, s) for name, s in sections.items() if s.get("coverage")]
    if not measured:
        return None
    files: dict[str, Any] = {}
    total: dict[str, Any] = {}
    by_language: dict[str, dict[str, Any]] = {}
    branch_measured = False
    for _name, section in measured:
        cov = section["coverage"]
        files.update(cov.get("files", {}))
        language = "python" if section.get("runner") == "pytest" else "javascript"
        _add(total, cov["total"])
        _add(by_language.setdefault(language, {}), cov["total"])
        branch_measured = branch_measured or bool(cov["total"].get("branch_measured"))
    for part in [total, *by_language.values()]:
        part["line_percent"] = _percent(part["lines_covered"], part["lines_total"])
        part["branch_percent"] = _percent(part["branches_covered"], part["branches_total"])
    total["branch_measured"] = branch_measured
    return {
        "source": "+".join(dict.fromkeys(s["runner"] for _, s in measured)),
        "files": dict(sorted(files.items())),
        "total": total,
        "by_language": by_language,
    }
