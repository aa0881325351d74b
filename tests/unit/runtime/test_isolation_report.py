"""doctor says how the process runtime bounds a tenant on this host: as whom its sandboxes run, and that the
limits are rlimits (not cgroups), with the values in force."""

from __future__ import annotations

import os

from bridge.host.doctor import isolation_report
from bridge.settings import BridgeSettings


def test_doctor_names_the_uid_and_the_limit_mechanism(tmp_path) -> None:
    settings = BridgeSettings(data_dir=tmp_path, instance_pids=99, instance_memory="300m", instance_disk="40m")
    report = isolation_report(settings)
    assert "RLIMIT_NPROC" in report["limits"] and "99 processes" in report["limits"] and "300m" in report["limits"]
    assert "40m tmpfs" in report["limits"] and "not cgroups" in report["limits"]
    if os.geteuid() == 0:
        assert settings.sandbox_uids in report["runs_as"] and "never root" in report["runs_as"]
    else:
        assert str(os.getuid()) in report["runs_as"]
