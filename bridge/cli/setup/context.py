"""What one ``devops-paradise setup`` run knows and how it talks: the resolved places, the progress steps,
the setup log, questions, and the one way a run fails (undo what it half-made, one sentence, the log)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

STEPS = 10


def program_name(command: str) -> str:
    """The error prefix: ``start-devops-paradise`` through a wrapper, else ``devops-paradise``."""
    if command.startswith("devops-paradise"):
        return "devops-paradise"
    return re.sub(r"\.(sh|ps1)$", "", Path(command).name)


class SetupFailed(Exception):
    """The run cannot go on; the message is the one sentence the user reads (exit status 1)."""


class SetupUsageError(Exception):
    """The command line is wrong (exit status 2)."""


class _InDataDir:
    """A read-only ``SetupOptions`` attribute: the path ``parts`` under its ``data_dir``, so each file setup
    keeps there is declared in one line. Left unannotated in the class body, so the dataclass makes no field of it."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    @overload
    def __get__(self, options: None, owner: type) -> _InDataDir: ...
    @overload
    def __get__(self, options: SetupOptions, owner: type | None = None) -> Path: ...
    def __get__(self, options: SetupOptions | None, owner: type | None = None) -> Path | _InDataDir:
        return self if options is None else options.data_dir.joinpath(*self.parts)


@dataclass
class SetupOptions:
    """The command line and the environment, resolved once: every path absolute, every number checked."""

    action: str  # setup | status | stop | remove
    client: str
    workspace: Path
    profile: str
    runtime_arg: str  # "" when --runtime was not given
    port: int
    show_token: bool
    assume_yes: bool
    data_dir: Path
    repo_dir: Path
    command: str  # how the user started us, for the "Later: …" line and the error prefix
    setup_timeout: float
    bridge_wait: float
    given_venv: str | None  # PARADISE_VENV: an existing virtualenv nothing is installed into

    @property
    def prog(self) -> str:
        return program_name(self.command)

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    pid_file = _InDataDir("bridge.pid")
    bridge_log = _InDataDir("bridge.log")
    setup_log = _InDataDir("setup.log")
    runtime_file = _InDataDir("runtime")

    @property
    def token_file(self) -> Path:
        return self.data_dir / "tokens" / self.client  # the one file named after the client


@dataclass
class Reporter:
    """Progress on the terminal, everything in the setup log, and the undo list for a failure."""

    options: SetupOptions
    log_path: Path | None = None
    step_no: int = 0
    started: float = field(default_factory=time.monotonic)
    undo: dict[str, Callable[[], None]] = field(default_factory=dict)

    def elapsed(self) -> int:
        return int(time.monotonic() - self.started)

    def log(self, line: str) -> None:
        if self.log_path is not None and self.log_path.parent.is_dir():
            with self.log_path.open("a") as handle:
                handle.write(line + "\n")

    def step(self, title: str) -> None:
        self.step_no += 1
        print(f"\n==> [{self.step_no}/{STEPS}] {title}   ({self.elapsed()}s)", flush=True)
        self.log(f"== {title} ({self.elapsed()}s)")

    def info(self, line: str) -> None:
        print(f"    {line}", flush=True)

    def warn(self, line: str) -> None:
        print(f"    warning: {line}", flush=True)
        self.log(f"warning: {line}")

    def fail(self, sentence: str) -> SetupFailed:
        """``raise reporter.fail(...)``: the run loop undoes, logs and prints (see ``finish_failed``)."""
        return SetupFailed(sentence)

    def finish_failed(self, sentence: str) -> int:
        self.rollback()
        self.log(f"FAILED: {sentence}")
        print(f"\n{self.options.prog}: error: {sentence}", file=sys.stderr, flush=True)
        if self.log_path is not None and self.log_path.is_file():
            print(f"{self.options.prog}: log: {self.log_path}", file=sys.stderr, flush=True)
        return 1

    def rollback(self) -> None:
        """Undo in reverse order of doing: the client (and its token) first, then a bridge that never answered."""
        for name in reversed(list(self.undo)):
            action = self.undo.pop(name)
            try:
                action()
            except Exception as exc:  # one undo failing must not keep the others from running
                self.log(f"rollback: {name} failed ({exc.__class__.__name__}: {exc})")

    def say(self, text: str) -> None:
        """What a piece setup uses (the admin client, ``check``, the image build, the Serena install) has to
        say: each line logged and shown, indented under the step."""
        for line in text.split("\n"):
            self.log(line)
            print(f"    {line}", flush=True)

    def confirm(self, question: str, default_yes: bool) -> bool:
        """--yes says yes; without a terminal the default is taken."""
        if self.options.assume_yes:
            return True
        if not sys.stdin.isatty():
            return default_yes
        hint = "Y/n" if default_yes else "y/N"
        try:
            answer = input(f"    {question} [{hint}] ")
        except EOFError:
            answer = ""
        if answer[:1] in ("y", "Y"):
            return True
        if answer[:1] in ("n", "N"):
            return False
        return default_yes
