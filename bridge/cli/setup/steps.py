"""The numbered steps of ``devops-paradise setup``, in order (1-4 in ``machine``). Each step calls the pieces
the CLI's commands call too (the typed ``AdminClient``, ``write_config``, ``check_client``), gets their answers
as values and says what it did; a step that cannot finish raises ``SetupFailed`` with one sentence, and the run
loop undoes what this run half-made (a client without a working token, a bridge that never answered)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import bridge.cli.setup.claude as setup_claude
from bridge.cli.common import AdminError, CliError, WaitFailed, show_client, write_token_file
from bridge.cli.host import check_client
from bridge.cli.roots import add_root
from bridge.cli.setup.claude import quoted
from bridge.cli.setup.context import Reporter, SetupOptions
from bridge.cli.setup.machine import MachineSteps, last_line, live_pid, port_taken, running_runtime
from bridge.models import ClientView
from bridge.workspaces import ROOTS_FILE

BRIDGE_POLL = 0.25  # seconds between /healthz tries while the bridge starts


class SetupRun(MachineSteps):
    """One setup: ``run()`` does the steps in order and returns the exit status."""

    def __init__(self, options: SetupOptions, report: Reporter) -> None:
        super().__init__(options, report)
        self.config: dict[str, Any] = {}
        self.claude_lines: list[str] = []

    def run(self) -> int:
        o = self.o
        print(f"DevOps Paradise setup: client {o.client}, workspace {o.workspace}", flush=True)
        for step in (self.check_prerequisites, self.python_environment, self.choose_runtime, self.prepare_runtime,
                     self.start_bridge, self.register_client, self.wait_ready, self.write_config, self.prove,
                     self.claude_code):
            step()
        self.summary()
        return 0

    # ---- 5: the bridge ----------------------------------------------------------------------------------

    def start_bridge(self) -> None:
        self.r.step("Starting the bridge")
        o = self.o
        if self.already_running:
            pid = live_pid(o.pid_file) or "?"
            self.r.info(f"already running at {o.bridge_url} (pid {pid}, log {o.bridge_log})")
            try:
                self.admin.list_clients()
            except CliError as exc:
                raise self.fail(f"a bridge answers on port {o.port} but does not accept the admin token of "
                                f"{o.data_dir} ({exc}); stop it or choose another port with --port.") from None
            return
        old = live_pid(o.pid_file)
        if old:
            raise self.fail(f"the bridge of {o.data_dir} (pid {old}) runs but does not answer on {o.bridge_url} "
                            "(another --port?); stop it with --stop and run again.")
        if port_taken(o.port):
            raise self.fail(f"port {o.port} is in use by another program; choose another port with --port.")
        proc = self.spawn_bridge()
        self.r.info(f"pid {proc.pid}, log {o.bridge_log}; waiting for {o.bridge_url}/healthz")
        self.wait_for_bridge(proc)
        del self.r.undo["bridge"]
        o.runtime_file.write_text(self.runtime + "\n")
        self.r.info(f"the bridge answers ({self.runtime} runtime)")

    def spawn_bridge(self) -> subprocess.Popen:
        o = self.o
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with o.bridge_log.open("a") as log:
            log.write(f"\n---- {stamp} started by {o.prog} (runtime {self.runtime})\n")
            log.flush()
            # its own session: a Ctrl-C of setup (or of the terminal later) never reaches the bridge
            detached = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS} \
                if os.name == "nt" else {"start_new_session": True}
            proc = subprocess.Popen(
                [sys.executable, "-m", "bridge", "serve"], cwd=o.repo_dir, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PARADISE_RUNTIME": self.runtime},
                **detached,  # type: ignore[arg-type]
            )
        o.pid_file.write_text(f"{proc.pid}\n")

        def stop_unanswered_bridge() -> None:
            self.r.log(f"rollback: stopping the bridge that did not come up (pid {proc.pid})")
            proc.kill()
            proc.wait(10)
            o.pid_file.unlink(missing_ok=True)

        self.r.undo["bridge"] = stop_unanswered_bridge
        return proc

    def wait_for_bridge(self, proc: subprocess.Popen) -> None:
        o = self.o
        deadline = time.monotonic() + o.bridge_wait
        while running_runtime(o.bridge_url) is None:
            if proc.poll() is not None:
                why = last_line(o.bridge_log)
                if "address already in use" in why:
                    raise self.fail(f"port {o.port} is in use by another program; choose another port with --port.")
                raise self.fail(f"the bridge stopped during start-up: {why}")
            if time.monotonic() > deadline:
                raise self.fail(f"the bridge did not answer on {o.bridge_url} within {o.bridge_wait:g}s.")
            time.sleep(BRIDGE_POLL)

    # ---- 6, 7: the client -------------------------------------------------------------------------------

    def register_client(self) -> None:
        o = self.o
        self.r.step(f"Registering client {o.client}")
        self.allow_workspace()
        try:
            existing = self.admin.client(o.client)
        except CliError as exc:
            if not isinstance(exc, AdminError) or exc.status != 404:
                raise self.fail(f"asking the bridge about client {o.client} failed: {exc}") from None
            self.new_client()
            return
        self.reuse_client(existing)

    def allow_workspace(self) -> None:
        """A project outside the bridge's roots (``/srv/shop``, ``/workspaces/x``) that this user owns is added
        to the roots of this data dir's bridge, which reads them on every registration; others stay refused."""
        try:
            path, added = add_root(self.o.workspace, self.o.data_dir)
        except CliError as exc:
            self.r.log(f"workspace roots: {exc}")  # the bridge's refusal says it again, with the way in
            return
        if added:
            self.r.info(f"added {path} to the workspace roots")
            self.r.log(f"added {path} to {self.o.data_dir / ROOTS_FILE}")

    def new_client(self) -> None:
        o = self.o
        o.token_file.unlink(missing_ok=True)  # a token of an earlier client of this name is worthless now
        try:
            created = self.admin.add_client(o.client, o.workspace, profile=o.profile, wait=0)
        except CliError as exc:
            raise self.fail(f"registering client {o.client} failed: {exc}") from None

        def delete_client() -> None:
            self.r.log(f"rollback: deleting client {o.client} and its token file")
            self.admin.delete_client(o.client)
            o.token_file.unlink(missing_ok=True)

        self.r.undo["client"] = delete_client
        self.r.log(show_client(created))
        try:
            write_token_file(o.token_file, created.token)
        except OSError as exc:  # the undo above deletes the client: nobody would have its token
            problem = f"cannot write the token file {o.token_file} ({exc.strerror}); registration undone"
            raise self.fail(f"registering client {o.client} failed: {problem}") from None
        self.r.info(f"registered; token stored in {o.token_file} (mode 600)")

    def reuse_client(self, client: ClientView) -> None:
        o = self.o
        if client.workspace != str(o.workspace):
            raise self.fail(f"client {o.client} is already registered for the workspace {client.workspace}; use "
                            f"another client name or remove it first with --remove {o.client}.")
        self.r.info("already registered (reusing it)")
        if client.profile != o.profile:
            self.r.warn(f"client {o.client} keeps its quality profile '{client.profile}'; to change it, --remove "
                        "it and run again")
        if any(i.state == "failed" for i in client.instances):
            self.r.info("an instance had failed: restarting the client's instances")
            try:
                self.admin.restart_client(o.client)
            except CliError as exc:
                raise self.fail(f"restarting the instances of {o.client} failed: {exc}") from None
        if o.token_file.is_file() and o.token_file.stat().st_size > 0:
            self.r.info(f"reusing the token in {o.token_file}")
            return
        try:
            rotated = self.admin.rotate_token(o.client)
            try:
                write_token_file(o.token_file, rotated.token)
            except OSError as exc:
                raise CliError(f"token rotated, but {o.token_file} cannot be written ({exc.strerror})") from None
        except CliError as exc:
            raise self.fail(f"issuing a new token for {o.client} failed: {exc}") from None
        self.r.info(f"no stored token for {o.client}: issued a new one into {o.token_file} (older copies stop working)")

    def wait_ready(self) -> None:
        o = self.o
        self.r.step(f"Waiting for the instances of {o.client}")
        try:
            client = self.admin.wait_ready(o.client, o.setup_timeout,
                                           progress=lambda service, state: self.r.say(f"  {service}: {state}"))
        except WaitFailed as exc:
            if exc.failed is not None:
                self.r.say(show_client(exc.client))
            raise self.fail(f"the instances of {o.client} did not become ready: {exc}") from None
        except CliError as exc:
            raise self.fail(f"the instances of {o.client} did not become ready: {exc}") from None
        for inst in client.instances:
            for note in inst.notes:
                self.r.say(f"  note: {inst.service}: {note}")
        self.r.say(f"all instances of {o.client} are running")
        self.r.undo.pop("client", None)  # registered and ready: from here on the client is complete

    # ---- 8, 9, 10: the configuration, the proof, Claude Code --------------------------------------------

    def write_config(self) -> None:
        o = self.o
        self.r.step("Writing the Claude Code configuration")
        try:
            self.config = self.admin.mcp_config(o.client).model_dump(mode="json")
            self.r.say(setup_claude.write_config(o.workspace, self.config))
        except CliError as exc:
            raise self.fail(f"could not write {o.workspace}/.mcp.json: {exc}") from None

    def prove(self) -> None:
        o = self.o
        self.r.step("Proving the path: MCP initialize + tools/list through the bridge")
        try:
            check_client(o.client, mcp_json=str(o.workspace / ".mcp.json"), token_file=str(o.token_file),
                         timeout=120.0, progress=self.r.say)
        except CliError as exc:
            if "refused the token" in str(exc):
                raise self.fail(f"the bridge refused the token in {o.token_file}; delete that file and run this "
                                "again to get a new one.") from None
            raise self.fail(f"the MCP check through the bridge failed: {exc}") from None

    def token_shell(self) -> str:
        if self.o.show_token:
            return self.o.token_file.read_text().strip()
        return f"$(cat {quoted(str(self.o.token_file))})"

    def claude_code(self) -> None:
        o = self.o
        self.r.step("Registering the servers with Claude Code")
        claude = setup_claude.claude_command()
        names = list(self.config.get("mcpServers", {}))
        if claude is None:
            self.r.info("`claude` is not on PATH (npm install -g @anthropic-ai/claude-code); the lines that register "
                        "the servers once it is installed are below")
            self.r.info(setup_claude.approval_note(self.config) + ".")
            return
        if setup_claude.config_inside(o.workspace):
            self.r.warn(f"Claude Code keeps its configuration in {setup_claude.claude_config_file()}, inside the "
                        "workspace: the token is not put there; " + setup_claude.approval_note(self.config))
            return
        token = o.token_file.read_text().strip()
        try:
            for line in setup_claude.register(claude, o.workspace, self.config, token):
                self.r.info(line)
                self.r.log(line)
            self.r.info("$ claude mcp list")
            self.claude_lines = setup_claude.listed(claude, o.workspace, names)
        except setup_claude.ClaudeCodeError as exc:
            raise self.fail(f"{exc}; the bridge and the client are ready, run this again or see "
                            "docs/troubleshooting.md.") from None
        for line in self.claude_lines:
            self.r.info(line)
            self.r.log(line)
        if len(self.claude_lines) < len(names) or not all(map(setup_claude.connected, self.claude_lines)):
            self.r.warn("Claude Code does not report every server Connected; see docs/troubleshooting.md")

    def summary(self) -> None:
        o = self.o
        pid = live_pid(o.pid_file) or "?"
        names = ", ".join(self.config.get("mcpServers", {}))
        token = self.token_shell()
        export = f"export DEVOPS_PARADISE_TOKEN={token}" if o.show_token else f'export DEVOPS_PARADISE_TOKEN="{token}"'
        lines = [
            "", f"DevOps Paradise is ready for {o.client} ({self.runtime} runtime, {self.r.elapsed()}s).", "",
            f"  workspace    {o.workspace}   (.mcp.json: {names})",
            f"  bridge       {o.bridge_url}   (pid {pid}, log {o.bridge_log})",
            f"  token file   {o.token_file}   (mode 600; never commit it)",
            f"  setup log    {o.setup_log}",
        ]
        if self.claude_lines:
            lines += [f"  Claude Code  {names} at local scope (kept in {setup_claude.claude_config_file()})", "",
                      "Start Claude Code in the workspace; nothing is left to approve:", "",
                      f"  cd {quoted(str(o.workspace))} && claude", "",
                      "Other MCP clients read .mcp.json; put the token in their environment:", "", f"  {export}"]
        else:
            lines += ["", "Before starting Claude Code in the workspace, put the token in its environment (Claude Code "
                      "then asks once to approve the project's servers):", "", f"  {export}", "",
                      "Or register the servers with Claude Code at local scope, so nothing is left to approve:", ""]
            lines += [f"  {line}" for line in setup_claude.manual_commands(o.workspace, self.config, token)]
        lines += ["", f"Later: {o.command} --status | --stop | --remove {o.client}"]
        print("\n".join(lines), flush=True)
