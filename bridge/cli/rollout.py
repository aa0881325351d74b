"""``devops-paradise rollout …``: move a service's instances to a catalog version in waves (docs/rollouts.md)."""

from __future__ import annotations

import argparse
from typing import Any

from bridge.cli.common import CliError, call, emit, table
from bridge.rollout_settings import parse_waves


def waves_arg(value: str) -> list[int]:
    """argparse type: rising percentages ending at 100, e.g. 10,25,50,100."""
    try:
        return parse_waves(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def show_rollout(rollout: dict[str, Any]) -> str:
    waves = rollout["waves"]
    out = [
        f"rollout    {rollout['service']}: {rollout['from_version']} -> {rollout['to_version']}",
        f"state      {rollout['state']}" + (f" ({rollout['reason']})" if rollout.get("reason") else ""),
        f"wave       {min(rollout['wave'] + 1, len(waves))}/{len(waves)} of {','.join(map(str, waves))}% "
        f"(soak {rollout['soak']:g}s)",
        f"moved      {rollout['moved']}/{rollout['instances']} instances on {rollout['to_version']}",
    ]
    rows = [[str(g.get("wave")), f"{g.get('percent')}%", f"{g.get('moved')}/{g.get('instances')}",
             "pass" if g.get("ok") else "FAIL", _calls(g.get("wave_traffic")), _calls(g.get("rest_traffic")),
             g.get("reason") or ""] for g in rollout.get("gates", [])]  # fmt: skip
    if rows:
        out += ["", table(rows, ["WAVE", "TARGET", "MOVED", "GATE", "WAVE CALLS", "OTHER CALLS", "REASON"])]
    return "\n".join(out)


def _calls(group: Any) -> str:
    """calls/failed and p95 of one group of a gate, as the gate recorded them."""
    if not isinstance(group, dict):
        return "-"
    p95 = group.get("p95_ms")
    return f"{group.get('calls', 0)} ({group.get('failed', 0)} failed" + (f", p95 {p95} ms)" if p95 else ")")


def cmd_rollout_start(args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"service": args.service, "to": args.to}
    if args.waves:
        body["waves"] = args.waves
    if args.soak is not None:
        body["soak"] = args.soak
    rollout = call("POST", "/rollouts", json=body)
    emit(args, rollout, show_rollout(rollout) + f"\n\nfollow it with: devops-paradise rollout status {args.service}")


def cmd_rollout_status(args: argparse.Namespace) -> None:
    if args.service:
        rollout = call("GET", f"/rollouts/{args.service}")
        emit(args, rollout, show_rollout(rollout))
        return
    rollouts = call("GET", "/rollouts")
    rows = [[r["service"], f"{r['from_version']} -> {r['to_version']}", r["state"], f"{r['moved']}/{r['instances']}",
             str(r["updated_at"])[:19]] for r in rollouts]  # fmt: skip
    emit(args, rollouts, table(rows, ["SERVICE", "VERSIONS", "STATE", "MOVED", "UPDATED"]) if rows else "no rollouts")


def cmd_rollout_control(args: argparse.Namespace) -> None:
    if args.action not in ("pause", "resume", "abort"):
        raise CliError(f"unknown action {args.action!r}")
    rollout = call("POST", f"/rollouts/{args.service}/{args.action}")
    emit(args, rollout, show_rollout(rollout))


def add_rollout_parsers(sub: Any) -> None:
    rollout = sub.add_parser("rollout", help="move a service's clients to another catalog version in waves")
    actions = rollout.add_subparsers(dest="rollout_command", required=True)
    start = actions.add_parser("start", help="start a rollout (one per service at a time)")
    start.add_argument("service")
    start.add_argument("--to", required=True, help="a version the catalog declares for the service")
    start.add_argument("--waves", type=waves_arg, help="cumulative percentages (default PARADISE_ROLLOUT_WAVES)")
    start.add_argument("--soak", type=float, help="seconds each wave serves before its gate "
                       "(default PARADISE_ROLLOUT_SOAK)")  # fmt: skip
    start.set_defaults(func=cmd_rollout_start)
    status = actions.add_parser("status", help="the service's latest rollout, or every recent one")
    status.add_argument("service", nargs="?")
    status.set_defaults(func=cmd_rollout_status)
    for action, what in (("pause", "no further wave starts"), ("resume", "the wave soaks again"),
                         ("abort", "every moved instance goes back")):  # fmt: skip
        control = actions.add_parser(action, help=f"{action} the service's rollout ({what})")
        control.add_argument("service")
        control.set_defaults(func=cmd_rollout_control, action=action)
