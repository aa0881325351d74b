"""The readable text content of a reply: the one-paragraph summary followed by the same facts the
(sized) structured content holds — each failure with file:line and its assertion, findings by
severity, impacted and selected tests, the execution plan, risks, recommendations and what was cut.
Some MCP clients show only the text, so it must not lose what matters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .summaries import summarize

# list key -> (heading, how one item reads); filled by @lists above each formatter. Only membership and
# lookup are used: the reply's own key order decides the order the lists are rendered in.
_LISTS: dict[str, tuple[str, Callable[[Any], str]]] = {}


def lists(**headings: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register the decorated formatter for the reply lists named by the keywords (list key=heading; the key
    may sit at any depth of the reply), so each list is declared next to how one of its items reads."""

    def register(fmt: Callable[[Any], str]) -> Callable[[Any], str]:
        _LISTS.update((key, (heading, fmt)) for key, heading in headings.items())
        return fmt

    return register


def _first_line(text: Any, limit: int = 240) -> str:
    lines = str(text or "").strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


@lists(failures="Failures")
def _failure(f: dict[str, Any]) -> str:
    where = f"{f.get('file')}:{f.get('line')}" if f.get("file") else "?"
    crash = ""
    if f.get("crash_file") and (f.get("crash_file"), f.get("crash_line")) != (f.get("file"), f.get("line")):
        crash = f" (raised at {f['crash_file']}:{f['crash_line']})"
    return f"{f.get('kind', 'failed').upper()} {f.get('test')} at {where}{crash}: {_first_line(f.get('message'))}"


@lists(findings="Findings (most severe first)")
def _finding(f: dict[str, Any]) -> str:
    rule = f.get("rule") or f.get("id") or ""
    where = f"{f.get('file')}:{f.get('line')}" if f.get("file") else str(f.get("package", ""))
    return f"[{f.get('severity', '?')}] {where} {rule} {_first_line(f.get('message') or f.get('description'))}"


@lists(vulnerabilities="Vulnerable dependencies")
def _vulnerability(v: dict[str, Any]) -> str:
    fixes = ", ".join(v.get("fix_versions") or []) or "no fix listed"
    return f"{v.get('package')} {v.get('version')}: {v.get('id')} (fix: {fixes})"


@lists(impacted_tests="Impacted tests", selected_tests="Selected tests")
def _test_ref(t: dict[str, Any]) -> str:
    name = t.get("path") or t.get("test")
    return f"{name}: {t.get('reason', '')}".rstrip(": ")


@lists(changed_functions="Changed functions", untested_changed_functions="Changed functions no test executed")
def _function(f: dict[str, Any]) -> str:
    return f"{f.get('path')}:{f.get('start_line') or '?'} {f.get('name')} ({f.get('change')})"


def _risk(r: dict[str, Any]) -> str:
    inputs = ", ".join(f"{k}={v}" for k, v in (r.get("inputs") or {}).items())
    return f"{r.get('path') or r.get('test')}: risk {r.get('score')} ({inputs})"


@lists(changed_files="Changed files")
def _changed_file(f: dict[str, Any]) -> str:
    return f"{f.get('path')} {f.get('status')} +{f.get('added_lines', 0)}/-{f.get('removed_lines', 0)}"


@lists(workers="Workers")
def _worker(w: dict[str, Any]) -> str:
    return f"{w.get('worker')}: {w.get('tests')} tests, {w.get('seconds')}s of test time"


@lists(
    untested_changes="Changed modules no test imports",
    recommendations="Recommendations",
    fallback_reasons="Why the full suite",
    warnings="Warnings",
)
def _plain(item: Any) -> str:
    return item if isinstance(item, str) else _first_line(item, 300)


_RISK_KEYS = ("files", "tests")
_SKIP_UNDER = ("analysis.changed_files",)  # repeated under run_impacted_tests; listed once is enough


def _walk(value: Any, where: str, out: list[tuple[str, str, list[Any]]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in _LISTS and isinstance(item, list) and item and path not in _SKIP_UNDER:
                out.append((path, key, item))
            elif key == "risk" and isinstance(item, dict):
                for rk in _RISK_KEYS:
                    if isinstance(item.get(rk), list) and item[rk]:
                        out.append((f"{path}.{rk}", "risk", item[rk]))
            elif key not in ("more", "reply") and isinstance(item, dict):
                _walk(item, path, out)


def _plan(plan: dict[str, Any]) -> str:
    order = plan.get("order") or {}
    split = {"files": ", split by file", "tests": ", split by test (pytest-xdist)"}.get(plan.get("split") or "", "")
    parts = [f"Plan: {plan.get('mode', '?')} with {plan.get('workers', 1)} worker(s){split} — {plan.get('reason', '')}"]
    if order.get("failed_first"):
        parts.append(f"previously failed first: {', '.join(order['failed_first'][:5])}")
    if order.get("slowest_first"):
        parts.append(f"then slowest first ({len(order['slowest_first'])} timed tests)")
    if plan.get("max_failures"):
        parts.append(f"stops after {plan['max_failures']} failure(s)")
    return "; ".join(parts) + "."


def _find_plans(value: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        if isinstance(value.get("plan"), dict):
            out.append(value["plan"])
        for key, item in value.items():
            if key != "plan":
                _find_plans(item, out)


def render_text(tool: str, sized: dict[str, Any], limit: int) -> str:
    """The summary plus the facts, at most `limit` bytes (UTF-8)."""
    lines = [summarize(tool, sized)]
    served = sized.get("served_from")
    if isinstance(served, dict):
        lines.append(f"Read back from run {served.get('run_id')} (ran at {served.get('ran_at')}): nothing ran again.")
    elif sized.get("run_id"):
        lines.append(f"Run id: {sized['run_id']} (page/detail with this run_id read it back without running).")
    error = sized.get("error")
    if isinstance(error, dict) and error.get("fix"):
        lines.append(f"Fix: {error['fix']}")
    plans: list[dict[str, Any]] = []
    _find_plans(sized, plans)
    lines += [_plan(p) for p in plans[:2]]
    selection = sized.get("selection")
    if isinstance(selection, dict):
        lines.append(
            "Selection: "
            + ", ".join(f"{k}={v}" for k, v in selection.items() if not isinstance(v, dict | list) and v is not None)
        )
    backtest = sized.get("risk_backtest")
    if isinstance(backtest, dict):
        if backtest.get("runs_evaluated"):
            lines.append(
                f"Risk backtest: the top {backtest['top']} risks held a failing test in {backtest['hits']} of "
                f"{backtest['runs_evaluated']} recorded runs with failures (hit rate {backtest['hit_rate']}; a "
                f"random pick of {backtest['top']}: {backtest['random_pick_hit_rate']})."
                + (f" {backtest['note']}." if backtest.get("note") else "")
            )
        else:
            lines.append(f"Risk backtest: {backtest.get('note', 'nothing to evaluate')}.")
    serena = sized.get("serena") or (sized.get("analysis") or {}).get("serena")
    if isinstance(serena, dict) and serena.get("reason"):  # how impact was narrowed (or why it was not)
        lines.append(f"Serena: {serena['reason']}")
    risk = sized.get("risk") or (sized.get("analysis") or {}).get("risk")
    if isinstance(risk, dict) and risk.get("method") and risk.get("recorded_runs"):  # only with recorded history
        lines.append(f"Risk method ({risk.get('recorded_runs', 0)} recorded runs): {risk['method']}")
    found: list[tuple[str, str, list[Any]]] = []
    _walk(sized, "", found)
    for path, key, items in found:
        heading, fmt = ("Risk", _risk) if key == "risk" else _LISTS[key]
        label = heading if path == key else f"{heading} [{path}]"
        lines.append(f"{label}:")
        lines += [f"- {fmt(item) if isinstance(item, dict) or fmt is _plain else _plain(item)}" for item in items]
    more = sized.get("more") or []
    if more:
        described = "; ".join(
            f"{m['path']} {m.get('shown', 0)} of {m['total']} (page {m.get('page', 1)}/{m.get('pages', 1)})"
            if "total" in m
            else f"{m['path']} omitted ({m.get('omitted_bytes')} bytes)"
            for m in more[:20]
        )
        run = f"run_id={sized['run_id']!r}, " if sized.get("run_id") else ""
        lines.append(
            f"Shortened: {described}. Call again with {run}page=N or detail='full' for the rest "
            "(read from this run: nothing runs again)."
        )
    text = "\n".join(lines)
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    cut = encoded[: max(0, limit - 120)].decode("utf-8", "ignore").rsplit("\n", 1)[0]
    return cut + "\n[text shortened to fit the reply; the structured content has every listed item]"
