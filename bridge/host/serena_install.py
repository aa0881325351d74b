"""Install Serena into its own virtualenv so that instances run without any network access.

Serena (PyPI ``serena-agent``) pins its own ``mcp`` version, so it never shares the bridge's environment.
Its Python language server is normally fetched at run time with ``uvx -p 3.13``; instead PyPI ``pyright``
(which bundles the pyright npm package and runs it on Node.js) is installed into the same venv and the
instance configuration points Serena at ``<venv>/bin/pyright-langserver`` (see instances/serena/config.py).

Node.js: a system ``node`` (>= 14) is used when present; otherwise ``pyright[nodejs]`` brings Node as a
wheel from PyPI. Never the default nodeenv fallback, which downloads from nodejs.org at first run.

Synchronous on purpose: the bridge calls ``install_serena`` in a worker thread.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from instances.serena.config import pyright_langserver_path, serena_executable, venv_executable

# The one place where the Serena tool chain versions are pinned.
SERENA_VERSION = "2.1.0"
PYRIGHT_VERSION = "1.1.414"
SERENA_PYTHON_RANGE = ((3, 11), (3, 15))  # serena-agent 2.1.0: Requires-Python >=3.11,<3.15
MIN_NODE_MAJOR = 14  # pyright's package.json engines
MARKER_FILE = ".paradise-serena.json"
PIP_TIMEOUT = 1800.0
CHECK_TIMEOUT = 120.0


class SerenaInstallError(RuntimeError):
    """Installing Serena failed; ``step`` names the failing step, the message carries the tool's output."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"Serena installation failed at step '{step}': {detail}")
        self.step = step
        self.detail = detail


def default_serena_venv(data_dir: Path) -> Path:
    return Path(data_dir) / "serena-venv"


def _expected_marker(version: str) -> dict[str, str]:
    return {"serena-agent": version, "pyright": PYRIGHT_VERSION}


def serena_installed(venv: Path, version: str = SERENA_VERSION) -> bool:
    """True when ``venv`` holds a complete, verified installation of the pinned versions."""
    venv = Path(venv)
    try:
        marker = json.loads((venv / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    executables = (venv_executable(venv, "python"), serena_executable(venv), pyright_langserver_path(venv))
    return marker == _expected_marker(version) and all(os.access(path, os.X_OK) for path in executables)


def install_serena(
    venv: Path,
    *,
    version: str = SERENA_VERSION,
    python: str | None = None,
    progress: Callable[[str], None] = print,
) -> None:
    """Create ``venv`` with serena-agent==version and pyright, and verify both run offline. Idempotent."""
    venv = Path(venv).absolute()
    if serena_installed(venv, version):
        progress(f"Serena {version} already installed in {venv}")
        return
    started = time.monotonic()
    (venv / MARKER_FILE).unlink(missing_ok=True)
    venv_python = venv_executable(venv, "python")

    if not os.access(venv_python, os.X_OK):
        interpreter = python or sys.executable
        _check_python(interpreter)
        progress(f"creating virtualenv {venv} with {interpreter}")
        _run("create virtualenv", [interpreter, "-m", "venv", str(venv)], timeout=CHECK_TIMEOUT)

    pyright_requirement = f"pyright=={PYRIGHT_VERSION}" if _system_node_ok() else f"pyright[nodejs]=={PYRIGHT_VERSION}"
    progress(f"installing serena-agent=={version} and {pyright_requirement} (this takes a minute)")
    _run(
        "pip install",
        [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
         f"serena-agent=={version}", pyright_requirement],
        timeout=PIP_TIMEOUT,
    )

    progress("checking serena and pre-warming pyright (bundled, no download at run time)")
    _run("check serena", [str(serena_executable(venv)), "start-mcp-server", "--help"], timeout=CHECK_TIMEOUT)
    pyright_cli = venv_executable(venv, "pyright")
    output = _run("pre-warm pyright", [str(pyright_cli), "--version"], timeout=CHECK_TIMEOUT, env=_pyright_env())
    if PYRIGHT_VERSION not in output:
        raise SerenaInstallError("pre-warm pyright", f"expected pyright {PYRIGHT_VERSION}, got: {output.strip()}")
    check_langserver(pyright_langserver_path(venv))

    marker = json.dumps(_expected_marker(version), indent=2)
    (venv / MARKER_FILE).write_text(marker, encoding="utf-8")
    progress(f"Serena {version} installed in {venv} ({time.monotonic() - started:.0f}s)")


def check_langserver(langserver: Path, timeout: float = CHECK_TIMEOUT) -> dict:
    """Start ``pyright-langserver --stdio``, complete an LSP initialize/shutdown/exit round; return its capabilities."""
    step = "language server check"
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                [str(langserver), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, env=_pyright_env(), start_new_session=True,
            )
        except OSError as exc:
            raise SerenaInstallError(step, f"cannot start {langserver}: {exc}") from exc
        watchdog = threading.Timer(timeout, _kill_group, args=(proc,))
        watchdog.start()
        try:
            capabilities = _lsp_initialize_and_exit(proc, timeout)
        except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
            _kill_group(proc)
            stderr.seek(0)
            output = stderr.read().decode(errors="replace")[-2000:]
            raise SerenaInstallError(step, f"{type(exc).__name__}: {exc}\n{output}") from exc
        finally:
            watchdog.cancel()
            _kill_group(proc)
            proc.wait()
            proc.stdout.close()
            if not proc.stdin.closed:
                proc.stdin.close()
    return capabilities


def _lsp_initialize_and_exit(proc: subprocess.Popen, timeout: float) -> dict:
    init = {"processId": os.getpid(), "rootUri": None, "capabilities": {}}
    capabilities = _lsp_request(proc, 1, "initialize", init).get("capabilities")
    if not capabilities:
        raise ValueError("initialize answered without capabilities")
    _lsp_request(proc, 2, "shutdown", None)
    _lsp_send(proc, {"jsonrpc": "2.0", "method": "exit"})
    proc.stdin.close()
    proc.wait(timeout)
    return capabilities


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the language server and its node child (they share the new session's process group)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _lsp_send(proc: subprocess.Popen, message: dict) -> None:
    body = json.dumps(message).encode()
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()


def _lsp_request(proc: subprocess.Popen, request_id: int, method: str, params: dict | None) -> dict:
    """Send one request and skip notifications until its response arrives."""
    _lsp_send(proc, {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    while True:
        message = _lsp_read(proc.stdout)
        if message.get("id") == request_id and "method" not in message:
            if "error" in message:
                raise ValueError(f"{method} failed: {message['error']}")
            return message.get("result") or {}


def _lsp_read(stream) -> dict:
    length = None
    while True:
        line = stream.readline()
        if not line:
            raise ValueError("language server closed its output (crashed or timed out)")
        line = line.strip()
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ValueError("LSP message without Content-Length")
    return json.loads(stream.read(length))


def _pyright_env() -> dict[str, str]:
    # no "new version available" lookup on PyPI; always the pyright bundled in the wheel
    env = dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS="1")
    env.pop("PYRIGHT_PYTHON_FORCE_VERSION", None)
    return env


def _system_node_ok() -> bool:
    node = shutil.which("node")
    if node is None:
        return False
    try:
        output = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    match = re.match(r"v?(\d+)\.", output.strip())
    return bool(match) and int(match.group(1)) >= MIN_NODE_MAJOR


def _check_python(interpreter: str) -> None:
    step = "check python"
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    output = _run(step, [interpreter, "-c", code], timeout=CHECK_TIMEOUT).strip()
    major, minor = (int(part) for part in output.split("."))
    low, high = SERENA_PYTHON_RANGE
    if not low <= (major, minor) < high:
        raise SerenaInstallError(
            step, f"{interpreter} is Python {output}; serena-agent {SERENA_VERSION} needs >={low[0]}.{low[1]},"
            f"<{high[0]}.{high[1]} (pass python=...)"
        )


def _run(step: str, argv: list[str], *, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run one installation step; return its stdout or raise SerenaInstallError with the output's tail."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError as exc:
        raise SerenaInstallError(step, f"command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SerenaInstallError(step, f"timed out after {timeout:.0f}s: {' '.join(argv)}") from exc
    except OSError as exc:
        raise SerenaInstallError(step, f"{exc}") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout or "").strip()[-3000:]
        raise SerenaInstallError(step, f"exit code {result.returncode} from {' '.join(argv)}\n{tail}")
    return result.stdout
