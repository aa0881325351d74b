"""Steps 1-4 of ``devops-paradise setup``: this machine (prerequisites, the Python environment, the runtime and
what it needs), plus the small probes every step uses. ``MachineSteps`` holds what one run has learnt so far;
``steps.SetupRun`` adds the bridge, the client and Claude Code on top."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from bridge.cli.common import AdminClient, CliError
from bridge.cli.host import install_serena_now
from bridge.cli.setup.context import Reporter, SetupFailed, SetupOptions
from bridge.host.doctor import catalog_images, node_report
from bridge.host.images import ImageBuildError, build_images
from bridge.host.serena_install import serena_installed
from bridge.runtime.base import port_is_free
from bridge.runtime.selection import MachineFacts, choose_runtime, gather_facts
from bridge.settings import BridgeSettings, SettingsError, load_settings


def running_runtime(url: str) -> str | None:
    """The runtime of the bridge answering /healthz at ``url``; None when none answers."""
    health = AdminClient(url).health()
    return health.runtime if health else None


def port_taken(port: int) -> bool:
    """True when the bridge could not bind the port (a listener, or any other socket holding it)."""
    return not port_is_free(port)


def live_pid(pid_file: Path) -> int | None:
    """The pid in the pid file when that process is still alive (psutil: ``os.kill(pid, 0)`` is a Ctrl-C on
    Windows)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].removeprefix("devops-paradise: ") if lines else ""


class MachineSteps:
    """What one setup run has learnt so far, and the steps about this machine."""

    def __init__(self, options: SetupOptions, report: Reporter) -> None:
        self.o = options
        self.r = report
        self.admin = AdminClient(options.bridge_url)  # its token is read at each call: the bridge writes it
        self.settings: BridgeSettings | None = None
        self.facts: MachineFacts | None = None
        self.runtime = ""
        self.already_running: str | None = None

    def fail(self, sentence: str) -> SetupFailed:
        return self.r.fail(sentence)

    def load_settings(self) -> BridgeSettings:
        if self.settings is None:
            try:
                self.settings = load_settings()
            except SettingsError as exc:
                raise self.fail(str(exc)) from None
        return self.settings

    # ---- 1, 2: this machine and the Python environment -------------------------------------------------

    def check_prerequisites(self) -> None:
        self.r.step("Checking prerequisites")
        version = ".".join(map(str, sys.version_info[:3]))
        where = f"virtualenv {sys.prefix}" if sys.prefix != sys.base_prefix else sys.executable
        self.r.info(f"python    {version} ({where})")
        if not self.o.workspace.is_dir():
            raise self.fail(f"the workspace '{self.o.workspace}' is not a directory; pass an existing project "
                            "directory as the second argument.")
        self.o.workspace = self.o.workspace.resolve()
        self.r.info(f"workspace {self.o.workspace}")
        self.r.info(f"client    {self.o.client} (quality profile {self.o.profile})")
        self.r.info(f"data dir  {self.o.data_dir}")

    def python_environment(self) -> None:
        self.r.step("Python environment")
        if self.o.given_venv:
            self.r.info(f"using {self.o.given_venv} (PARADISE_VENV; nothing installed into it, code from "
                        f"{self.o.repo_dir})")
        else:
            self.r.info(f"up to date ({sys.prefix})")
        from instances.quality.core.profiles import load_profiles  # the quality server's own list of profiles

        known = sorted(load_profiles())
        if self.o.profile not in known:
            raise self.fail(f"unknown quality profile '{self.o.profile}'; choose one of: {' '.join(known)}.")

    # ---- 3, 4: the runtime ------------------------------------------------------------------------------

    def wanted_runtime(self) -> tuple[str, str]:
        if self.o.runtime_arg:
            return self.o.runtime_arg, "asked for"
        try:
            last = self.o.runtime_file.read_text().strip()
        except OSError:
            last = ""
        if last:
            return last, "used last time; --runtime to change"
        return os.environ.get("PARADISE_RUNTIME") or "auto", "PARADISE_RUNTIME"

    def machine_facts(self, setting: str) -> MachineFacts:
        """What this machine has for ``setting`` (the engine, its images, bubblewrap), looked at once."""
        if self.facts is None:
            settings = self.load_settings()
            self.facts = gather_facts(setting, catalog_images(settings), allow_unsandboxed=settings.allow_unsandboxed)
            self.r.log(f"machine facts: {self.facts}")
        return self.facts

    def choose_runtime(self) -> None:
        self.r.step("Choosing the runtime")
        self.already_running = running_runtime(self.o.bridge_url)
        wanted, why = self.wanted_runtime()
        if self.already_running:
            self.runtime = self.already_running
            self.r.info(f"the bridge already runs at {self.o.bridge_url} with the {self.runtime} runtime")
            if self.o.runtime_arg not in ("", "auto", self.runtime):
                self.r.warn(f"--runtime {self.o.runtime_arg} applies when the bridge starts; run --stop first to "
                            "switch")
            return
        facts = self.machine_facts(wanted)
        # The one selection table (bridge/runtime/selection.py) that the bridge and doctor use too: setup never
        # decides differently from the bridge it starts.
        choice = choose_runtime(wanted, facts)
        because = choice.reason.replace(f"; {choice.warning}", "") if choice.warning else choice.reason
        if wanted == "process":
            self.r.info(f"process runtime ({why})")
        elif wanted == "docker":
            if not facts.engine_answers:
                raise self.fail("the docker runtime was asked for but no Docker engine answers; start Docker (Docker "
                                "Desktop, or scripts/ensure-docker.sh on Linux) or use --runtime process.")
            self.r.info(f"docker runtime ({why}; {facts.engine_detail})")
        elif wanted == "auto" and choice.chosen == "docker":
            self.r.info("docker runtime: a Docker engine answers and the images exist "
                        "(use --runtime process for local processes)")
        elif wanted == "auto":
            hint = " (--runtime docker builds them)" if facts.engine_answers else ""
            self.r.info(f"process runtime: {because.removeprefix('no Docker runtime: ')}{hint}")
        else:
            self.r.info(f"{choice.chosen} runtime ({why}; {because})")
        if not choice.usable and choice.chosen != "docker":  # docker without its images: step 4 builds them
            raise self.fail(f"the {wanted} runtime cannot run here: {because}.")
        if choice.warning:
            self.r.warn(choice.warning)
        self.runtime = choice.chosen
        self.refuse_process_on_windows()

    def refuse_process_on_windows(self) -> None:
        if self.runtime == "process" and os.name == "nt":  # instances need POSIX process groups and bubblewrap
            raise self.fail("the process runtime does not run on native Windows; start Docker Desktop and run "
                            "again, or use WSL2 with ./start-devops-paradise.sh.")

    def prepare_runtime(self) -> None:
        self.r.step(f"Preparing the {self.runtime} runtime")
        if self.runtime == "docker":
            self.prepare_docker()
        elif self.runtime == "process":
            self.prepare_process()
        else:
            self.r.info(f"nothing to prepare on this machine for the {self.runtime} runtime")

    def prepare_docker(self) -> None:
        missing = self.machine_facts("docker").missing_images
        if not missing:
            self.r.info("images present")
            return
        self.r.info(f"images to build: {' '.join(missing)}")
        if not self.r.confirm("Build the Docker images now (a few minutes the first time)?", True):
            raise self.fail("the docker runtime needs its images; build them with 'devops-paradise images build' "
                            "or use --runtime process.")
        started = time.monotonic()
        try:
            built = build_images(["serena", "quality"], progress=self.r.say)
        except ImageBuildError as exc:
            self.r.say(str(exc))
            raise self.fail("building the Docker images failed; see the log, or run with --runtime process to use "
                            "local processes instead.") from None
        self.r.say(f"built {', '.join(built)} in {time.monotonic() - started:.0f}s")

    def prepare_process(self) -> None:
        node = node_report()
        if node.get("version"):
            self.r.info(f"node      {node['version']} (runs Serena's pyright language server)")
        else:
            self.r.warn("node was not found; Serena's pyright will use the Node.js wheel from PyPI (install Node.js "
                        "18+ to use your own: https://nodejs.org, brew install node, or apt-get install nodejs)")
        venv = self.load_settings().serena_venv_path
        if serena_installed(venv):
            self.r.info(f"Serena installed ({venv})")
            return
        if not self.r.confirm(f"Install Serena into {venv} now (downloads about 100 MB once)?", True):
            raise self.fail("the process runtime needs Serena; install it with 'devops-paradise doctor --install "
                            "serena' or use --runtime docker.")
        self.r.info(f"installing Serena into {venv} (first time only)")
        try:
            install_serena_now(self.load_settings(), progress=self.r.say, problem=self.r.say)
        except CliError:
            raise self.fail("installing Serena failed; see the log (pip and pyright output), then run this "
                            "again.") from None
