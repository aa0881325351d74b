"""The bounded runner (real short-lived subprocesses) and profile loading."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from instances.quality.core.errors import QualityError
from instances.quality.core.profiles import load_profiles, pick_profile
from instances.quality.core.runner import clean_env, run_command


async def test_run_command_captures_output_and_exit_code(tmp_path: Path) -> None:
    result = await run_command(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        cwd=tmp_path,
        timeout=30,
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.completed and not result.timed_out and not result.truncated
    assert result.problem(30) is None


async def test_run_command_kills_the_whole_group_on_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    beats: list[float] = []

    async def beat(elapsed: float) -> None:
        beats.append(elapsed)

    started = time.monotonic()
    result = await run_command(
        [sys.executable, "-c", script], cwd=tmp_path, timeout=2.5, heartbeat=beat, heartbeat_interval=0.5
    )
    assert time.monotonic() - started < 10
    assert result.timed_out and result.returncode is None
    assert result.stdout == "started\n"
    assert result.problem(2.5, "pytest") == "pytest timed out after 2.5s and was killed"
    assert len(beats) >= 3 and beats == sorted(beats)
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the grandchild survived the timeout"


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


async def test_run_command_caps_output_and_reports_missing_tools(tmp_path: Path) -> None:
    result = await run_command([sys.executable, "-c", "print('x' * 100000)"], cwd=tmp_path, timeout=30, max_output=1000)
    assert result.truncated and len(result.stdout) == 1000 and result.returncode == 0
    missing = await run_command(["definitely-not-a-tool-xyz"], cwd=tmp_path, timeout=5)
    assert missing.missing and missing.returncode is None
    assert missing.problem(5).startswith("definitely-not-a-tool-xyz is not installed")


def test_clean_env_drops_outer_pytest_and_coverage_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COV_CORE_SOURCE", "/x")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    env = clean_env({"COVERAGE_FILE": "/tmp/c"})
    assert "COV_CORE_SOURCE" not in env and "PYTEST_ADDOPTS" not in env
    assert env["COVERAGE_FILE"] == "/tmp/c" and env["NO_COLOR"] == "1"


def test_builtin_profiles() -> None:
    profiles = load_profiles()
    assert set(profiles) == {"quick", "python", "comprehensive", "web"}
    assert profiles["quick"].tools == ("tests", "lint") and profiles["quick"].coverage is False
    assert profiles["quick"].timeout("tests") == 180.0 and profiles["quick"].timeout("security") == 180.0
    assert profiles["comprehensive"].tools == ("tests", "lint", "security", "dependencies", "changes", "e2e", "api")
    assert profiles["web"].tools[-3:] == ("e2e", "api", "performance") and profiles["web"].javascript is True
    assert profiles["web"].timeout("performance") == 300.0
    assert profiles["comprehensive"].thresholds["min_coverage"] == 80.0
    assert profiles["python"].max_findings == 500 and profiles["python"].vuln_probe_timeout == 3.0
    assert pick_profile(profiles, None).name == "python"


def test_custom_profiles_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "p.toml"
    good.write_text(
        '[defaults.timeouts]\ntests = 7\n[profiles.ci]\ntools = ["tests", "changes"]\n'
        "[profiles.ci.thresholds]\nmin_score = 50\n"
    )
    profiles = load_profiles(good)
    assert list(profiles) == ["ci"]
    assert profiles["ci"].timeout("tests") == 7.0 and profiles["ci"].thresholds == {"min_score": 50.0}
    assert pick_profile(profiles, None).name == "ci"
    with pytest.raises(QualityError, match="unknown profile 'python'"):
        pick_profile(profiles, "python")
    cases = {
        '[profiles.x]\ntools = ["tests", "fuzz"]\n': "unknown ['fuzz']",
        "[profiles.x\n": "not valid TOML",
        "[defaults]\nmax_findings = 3\n": "defines no [profiles.NAME] table",
        "[profiles.x.thresholds]\nmin_bananas = 1\n": "min_bananas is not one of",
        "[profiles.x.timeouts]\ntests = -1\n": "must be a non-negative number",
        '[profiles.x]\ncoverage = "yes"\n': "coverage must be true or false",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(QualityError, match=message.replace("[", r"\[").replace("]", r"\]")):
            load_profiles(bad)
    with pytest.raises(QualityError, match="cannot read profiles file"):
        load_profiles(tmp_path / "absent.toml")
