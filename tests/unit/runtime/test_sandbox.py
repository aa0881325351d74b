"""The sandbox's environment allow-list and mount plan (bridge/runtime/sandbox.py), without running bwrap."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bridge.runtime.base import InstanceSpec
from bridge.runtime.sandbox import Launch, Sandbox, instance_environment


def make_spec(tmp_path: Path, command: list[str] | None = None, env: dict[str, str] | None = None) -> InstanceSpec:
    workspace = tmp_path / "work"
    workspace.mkdir(exist_ok=True)
    return InstanceSpec(
        client_id="alice",
        service="svc",
        port=8200,
        workspace=workspace,
        instance_dir=tmp_path / "data" / "instances" / "alice" / "svc",
        command=command or [sys.executable, "-m", "instances.quality"],
        env=env or {},
    )


def launch_of(spec: InstanceSpec, home: Path) -> Launch:
    """A launch as the bridge's own user: ``home``, and the run directory in the instance's directory."""
    return Launch(home=home, run_dir=spec.instance_dir / "run")


def mounts(argv: list[str]) -> list[tuple[str, str]]:
    """(option, target) of every mount in a bwrap command line, in order."""
    found, i = [], 0
    while i < len(argv) and argv[i] != "--":
        option = argv[i]
        if option in ("--bind", "--ro-bind", "--ro-bind-try", "--symlink"):
            found.append((option, argv[i + 2]))
            i += 3
        elif option in ("--tmpfs", "--proc", "--dev"):
            found.append((option, argv[i + 1]))
            i += 2
        else:
            i += 1
    return found


def test_the_environment_is_an_allow_list(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PARADISE_ADMIN_TOKEN", "admin-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cloud-secret")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    catalog_env = {"LOG_LEVEL": "debug", "PARADISE_PROFILE": "strict", "PARADISE_INSTANCE_KEY": "k1",
                   "PARADISE_DATABASE_URL": "postgresql://x"}  # fmt: skip
    spec = make_spec(tmp_path, env=catalog_env)
    env = instance_environment(spec, tmp_path / "home")
    assert "admin-secret" not in env.values() and "cloud-secret" not in env.values()
    assert "PARADISE_DATABASE_URL" not in env  # a bridge setting never reaches an instance, even via the catalog
    assert env["LOG_LEVEL"] == "debug" and env["PARADISE_PROFILE"] == "strict" and env["PARADISE_INSTANCE_KEY"] == "k1"
    assert env["PARADISE_CLIENT"] == "alice" and env["PARADISE_SERVICE"] == "svc"
    assert env["PARADISE_WORKSPACE"] == str(spec.workspace) and env["HOME"] == str(tmp_path / "home")
    assert env["TZ"] == "Europe/Berlin" and env["LANG"]
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    allowed = {"PATH", "LANG", "TZ", "HOME", "USER", "LOGNAME", "PYTHONUNBUFFERED", "LOG_LEVEL"}
    assert {k for k in env if not k.startswith("PARADISE_")} <= allowed


def test_the_data_dir_is_never_mounted_but_the_own_home_is(tmp_path) -> None:
    spec = make_spec(tmp_path)
    home = spec.instance_dir / "home"
    home.mkdir(parents=True)
    (tmp_path / "data" / "admin-token").write_text("t")
    argv = Sandbox(tmp_path / "data").command(spec, launch_of(spec, home))
    targets = dict((target, option) for option, target in mounts(argv))
    # The home is a tmpfs of its own (capped, not on the data dir's disk); the run dir holds the socket.
    assert targets[str(home.resolve())] == "--tmpfs" and targets[str(spec.workspace.resolve())] == "--bind"
    run_dir = str((spec.instance_dir / "run").resolve())
    assert targets[run_dir] == "--bind"
    data = str((tmp_path / "data").resolve())
    own = (str(home.resolve()), run_dir)
    assert not [t for t in targets if t == data or (t.startswith(data + "/") and t not in own)]
    assert targets["/usr"] == "--ro-bind" and targets["/etc"] == "--ro-bind" and targets["/tmp"] == "--tmpfs"
    assert "/root" not in targets and "/home" not in targets and "/run" not in targets and "/" not in targets
    assert argv[len(argv) - len(spec.command) - 1 :] == ["--", *spec.command]  # behind sandbox_init
    assert "instances.sandbox_init" in argv[argv.index("--") + 1 : len(argv) - len(spec.command)]
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net", "--disable-userns",
                 "--as-pid-1"):  # fmt: skip
        assert flag in argv
    assert "--die-with-parent" not in argv  # instances outlive the bridge and are re-adopted
    assert argv[argv.index("--uid") + 1] != "0"


def test_a_workspace_holding_the_data_dir_gets_it_masked_again(tmp_path) -> None:
    spec = make_spec(tmp_path)
    spec = InstanceSpec(**{**spec.__dict__, "workspace": tmp_path})  # the data dir lies inside the workspace
    home = spec.instance_dir / "home"
    home.mkdir(parents=True)
    order = mounts(Sandbox(tmp_path / "data").command(spec, launch_of(spec, home)))
    workspace_at = order.index(("--bind", str(tmp_path.resolve())))
    mask_at = order.index(("--tmpfs", str((tmp_path / "data").resolve())))
    home_at = order.index(("--tmpfs", str(home.resolve())))
    assert workspace_at < mask_at < home_at  # the workspace, then the data dir hidden, then the own home


def test_paths_named_by_the_command_are_read_only_and_the_data_dir_only_where_shared(tmp_path) -> None:
    venv = tmp_path / "data" / "serena-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {Path(sys.base_prefix) / 'bin'}\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    command = [sys.executable, str(tools), "--venv", str(venv), "--db", str(tmp_path / "data")]
    spec = make_spec(tmp_path, command=command, env={"PYTHONPATH": f"{tools}:/nonexistent"})
    home = spec.instance_dir / "home"
    home.mkdir(parents=True)
    plain = dict((t, o) for o, t in mounts(Sandbox(tmp_path / "data").command(spec, launch_of(spec, home))))
    assert plain[str(tools)] == "--ro-bind" and str(venv) not in plain and "/nonexistent" not in plain
    assert str((tmp_path / "data").resolve()) not in plain  # named by the command, still refused
    shared_sandbox = Sandbox(tmp_path / "data", shared=(venv,))
    shared = dict((t, o) for o, t in mounts(shared_sandbox.command(spec, launch_of(spec, home))))
    assert shared[str(venv)] == "--ro-bind"


def test_a_command_is_required(tmp_path) -> None:
    spec = InstanceSpec("alice", "svc", 8200, tmp_path, tmp_path / "i", command=None)
    with pytest.raises(ValueError, match="no command"):
        Sandbox(tmp_path / "data").command(spec, launch_of(spec, tmp_path / "i" / "home"))
