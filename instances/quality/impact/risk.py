"""Failure risk of a change, from the project's own recorded history, with every input shown.

Per changed file: how often the tests it impacts failed in the recorded runs (runs.jsonl), how often
git history touched it (churn), how much of the changed code recorded coverage executed, and the size
of the change.  Per impacted test: its own failure rate, and the riskiest changed file it depends on.
The weights are a plain heuristic, not a fitted model; `backtest` says how well the ranking would
have predicted the recorded failures, next to what a random pick of three would have done."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from ..core.errors import QualityError
from ..core.workspace import Workspace
from ..testing.contexts import ContextMap
from ..testing.testhistory import load_timings, read_runs
from .gitdiff import FileChange, Git
from .importgraph import ImportGraph

WEIGHTS = {"past_failures": 0.45, "churn": 0.2, "size": 0.2, "uncovered": 0.15}
CHURN_COMMITS = 200
_CHURN_FULL = 10  # touched in this many of the last commits counts as maximal churn
_SIZE_FULL = 50  # changed lines
_TOP = 3
_MAX_LISTED = 25


def failure_rates(runs: list[dict[str, Any]]) -> dict[str, float]:
    """{test: (failures + 0.5) / (recorded runs + 1)} for every test that failed at least once; the
    smoothing keeps one failure in one run from reading as "certain to fail"."""
    counts: dict[str, int] = {}
    for run in runs:
        for test in run.get("failed", []):
            counts[test] = counts.get(test, 0) + 1
    total = len(runs)
    return {t: round((n + 0.5) / (total + 1), 3) for t, n in counts.items()}


def _test_file(test: str) -> str:
    return test.split("::", 1)[0]


async def churn(git: Git, paths: list[str]) -> dict[str, int]:
    """In how many of the last CHURN_COMMITS commits each path changed."""
    out = await git.run("log", f"-n{CHURN_COMMITS}", "--format=", "--name-only", "--no-renames", check=False)
    wanted = set(paths)
    counts = dict.fromkeys(paths, 0)
    for line in out.splitlines():
        if line in wanted:
            counts[line] += 1
    return counts


def _covered_share(contexts: ContextMap | None, path: str, change: FileChange, base_text: str | None) -> float | None:
    if contexts is None or not change.old_lines or not contexts.matches(path, base_text):
        return None
    executed = change.old_lines & contexts.executed_lines(path)
    return round(len(executed) / len(change.old_lines), 3)


async def assess(
    ws: Workspace,
    git: Git,
    base: str,
    changes: dict[str, FileChange],
    graph: ImportGraph,
    impacted: dict[str, list[str]],
) -> dict[str, Any]:
    """Risk per changed Python file and per impacted test, highest first, with their inputs."""
    runs = read_runs(ws)
    rates = failure_rates(runs)
    py = sorted(p for p in changes if p.endswith(".py"))
    churned = await churn(git, py) if py else {}
    contexts = ContextMap.load(ws)
    files: list[dict[str, Any]] = []
    for path in py:
        change = changes[path]
        tests = [t for t, chain in impacted.items() if path in chain]
        failures = max((r for t, r in rates.items() if _test_file(t) in tests), default=0.0)
        base_text = await git.show(base, path) if change.status == "modified" and contexts else None
        covered = _covered_share(contexts, path, change, base_text)
        inputs = {
            "past_failures": failures,
            "churn": churned.get(path, 0),
            "changed_lines": change.added + change.removed,
            "covered_share": covered,
        }
        parts = {
            "past_failures": failures,
            "churn": min(1.0, churned.get(path, 0) / _CHURN_FULL),
            "size": min(1.0, (change.added + change.removed) / _SIZE_FULL),
            "uncovered": 0.5 if covered is None else 1.0 - covered,
        }
        score = round(sum(WEIGHTS[k] * v for k, v in parts.items()), 3)
        files.append({"path": path, "score": score, "inputs": inputs, "impacted_test_files": len(tests)})
    files.sort(key=lambda f: (-f["score"], f["path"]))
    by_file = {f["path"]: f["score"] for f in files}
    tests_risk: list[dict[str, Any]] = []
    for test_file, chain in impacted.items():
        file_risk = max((by_file.get(p, 0.0) for p in chain), default=0.0)
        own = [(t, r) for t, r in rates.items() if _test_file(t) == test_file]
        worst = max(own, key=lambda tr: tr[1]) if own else (test_file, 0.0)
        score = round(0.6 * worst[1] + 0.4 * file_risk, 3)
        tests_risk.append(
            {"test": worst[0], "score": score, "inputs": {"failure_rate": worst[1], "changed_file_risk": file_risk}}
        )
    tests_risk.sort(key=lambda t: (-t["score"], t["test"]))
    return {
        "method": "no recorded test run yet: scores come from the change alone (churn, changed lines, coverage)"
        if not runs
        else (
            "score = " + " + ".join(f"{w} x {k}" for k, w in WEIGHTS.items()) + " (each input scaled to 0..1; "
            "uncovered counts 0.5 when no per-test coverage matches the file); per test: 0.6 x its failure "
            "rate + 0.4 x the riskiest changed file it depends on.  A heuristic; see quality_trends' backtest."
        ),
        "recorded_runs": len(runs),
        "files": files[:_MAX_LISTED],
        "tests": tests_risk[:_MAX_LISTED],
    }


def random_hit_chance(candidates: int, failing: int, top: int = _TOP) -> float:
    """Chance that `top` tests drawn at random from `candidates` include one of `failing`."""
    if candidates <= 0 or failing <= 0:
        return 0.0
    if candidates - failing < top:
        return 1.0
    return 1.0 - math.comb(candidates - failing, top) / math.comb(candidates, top)


def rank_for_run(
    previous: list[dict[str, Any]], changed: set[str], graph: ImportGraph | None, candidates: set[str]
) -> list[str]:
    """Tests ranked as the risk score would have ranked them before a run: failure rate over the
    earlier runs, plus the run's changed files reaching the test's file through the import graph."""
    rates = failure_rates(previous)
    reached: set[str] = set()
    if graph is not None:
        reached = set(graph.impacted_tests({p for p in changed if p in graph.nodes}))
    reached |= {p for p in changed if p.endswith(".py")}

    def score(test: str) -> float:
        return 0.6 * rates.get(test, 0.0) + (0.4 if _test_file(test) in reached else 0.0)

    return sorted(candidates, key=lambda t: (-score(t), t))


async def backtest(ws: Workspace, graph: ImportGraph | None, git: Git | None = None) -> dict[str, Any]:
    """For every recorded run with failures that had earlier runs: were the top-3 risks among the
    tests that failed?  Compared with the chance of a random pick of three."""
    runs = read_runs(ws)
    suite = set(load_timings(ws))  # every test the recorded runs saw
    evaluated = hits = 0
    baseline = 0.0
    examples: list[dict[str, Any]] = []
    for index, run in enumerate(runs):
        failed = set(run.get("failed", []))
        if index and failed:
            changed = set(run.get("changed_files", []))
            prev = runs[index - 1]
            if git is not None and prev.get("commit") and run.get("commit") and prev["commit"] != run["commit"]:
                diff = await git.run("diff", "--name-only", "--no-renames", prev["commit"], run["commit"], check=False)
                changed |= set(filter(None, diff.splitlines()))
            candidates = suite | failed
            top = rank_for_run(runs[:index], changed, graph, candidates)[:_TOP]
            hit = bool(failed & set(top))
            evaluated += 1
            hits += hit
            baseline += random_hit_chance(len(candidates), len(failed & candidates))
            if len(examples) < 10:
                examples.append({"at": run.get("at"), "top": top, "failed": sorted(failed)[:5], "hit": hit})
    result: dict[str, Any] = {
        "recorded_runs": len(runs),
        "runs_evaluated": evaluated,
        "top": _TOP,
        "hits": hits,
        "hit_rate": round(hits / evaluated, 3) if evaluated else None,
        "random_pick_hit_rate": round(baseline / evaluated, 3) if evaluated else None,
        "examples": examples,
    }
    if evaluated < 5:
        result["note"] = f"only {evaluated} run(s) with failures and history before them: too few to judge the ranking"
    return result


async def backtest_workspace(ws: Workspace) -> dict[str, Any]:
    """The backtest with the workspace's current import graph and, in a git repository, the commits
    between recorded runs."""
    if not read_runs(ws, 2):
        return {"recorded_runs": 0, "runs_evaluated": 0, "note": "no pytest run has been recorded yet"}
    graph = await asyncio.to_thread(ImportGraph.build, ws.python_sources())
    git: Git | None = Git(ws)
    try:
        await git.require_repo()
    except QualityError:
        git = None
    return await backtest(ws, graph, git)
