#!/usr/bin/env bash
# start-devops-paradise.sh: one command from this checkout to Claude Code talking to your own Serena and
# quality MCP servers. This wrapper only prepares Python (a Python >= 3.11, the project's .venv, the project
# installed into it) and then runs `devops-paradise setup` with the same arguments, which does every step
# (see `--help`, or bridge/cli/setup/).
#
# Portable on purpose: bash 3.2 (macOS) and Linux; no associative arrays, no ${var,,}, no mapfile, no |&.
set -u

PROG=start-devops-paradise
REPO_DIR=$(cd "$(dirname "$0")" && pwd -P)
DATA_DIR=${PARADISE_DATA_DIR:-$HOME/.devops-paradise}
case "$DATA_DIR" in \~/*) DATA_DIR="$HOME/${DATA_DIR#\~/}" ;; /*) ;; *) DATA_DIR="$PWD/$DATA_DIR" ;; esac
LOG="$DATA_DIR/setup.log"
CREATED_VENV=0

log() { if [ -d "$DATA_DIR" ]; then printf '%s\n' "$1" >>"$LOG"; fi; }
info() { printf '    %s\n' "$1"; }

# One sentence and the log's path, after removing a virtualenv this run created but could not finish.
fail() {
  if [ "$CREATED_VENV" = 1 ]; then log "rollback: removing the unfinished $VENV"; rm -rf "$VENV"; fi
  log "FAILED: $1"
  printf '\n%s: error: %s\n' "$PROG" "$1" >&2
  if [ -f "$LOG" ]; then printf '%s: log: %s\n' "$PROG" "$LOG" >&2; fi
  exit 1
}
trap 'fail "interrupted; everything this run had half-made was undone."' INT TERM

ACTION=setup WANTS_HELP=0
for arg in "$@"; do
  case "$arg" in
    --help | -h) WANTS_HELP=1 ;;
    --status) ACTION=status ;;
    --stop) ACTION=stop ;;
    --remove) ACTION=remove ;;
  esac
done

py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }
py_new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }
# The packages setup imports; all declared in pyproject.toml (dependencies and the quality extra).
venv_ready() {
  "$VENV_PY" -c 'import bridge.cli.setup.main, aiohttp, httptools, httpx, mcp, psutil, pydantic_settings, sqlmodel' >/dev/null 2>&1
}

find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then
    command -v "$PYTHON" >/dev/null 2>&1 \
      || fail "the Python interpreter '$PYTHON' (from PYTHON) was not found; point PYTHON at Python 3.11 or newer, or unset it."
    PY=$PYTHON
  else
    PY=""
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 && py_new_enough "$candidate"; then PY=$candidate; break; fi
    done
    if [ -z "$PY" ] && ! command -v python3 >/dev/null 2>&1; then
      fail "python3 was not found; install Python 3.11 or newer (macOS: brew install python@3.12; Debian/Ubuntu: sudo apt-get install python3 python3-venv) or set PYTHON to one."
    fi
    PY=${PY:-python3}
  fi
  py_new_enough "$PY" \
    || fail "Python 3.11 or newer is needed, but $PY is Python $(py_version "$PY"); install a newer one or set PYTHON to it."
  "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 \
    || fail "$PY has no working venv module; install it (Debian/Ubuntu: sudo apt-get install python3-venv) or set PYTHON to another Python 3.11+."
  info "python    $(py_version "$PY") ($(command -v "$PY"))"
}

if [ -n "${PARADISE_VENV:-}" ]; then
  case "$PARADISE_VENV" in /*) ;; *) PARADISE_VENV="$PWD/$PARADISE_VENV" ;; esac
  export PARADISE_VENV
  VENV=$PARADISE_VENV
  export PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, that venv's packages
else
  VENV="$REPO_DIR/.venv"
fi
VENV_PY="$VENV/bin/python"

# Nothing set up yet: help and the small actions answer without creating anything.
if [ -z "${PARADISE_VENV:-}" ] && [ "$WANTS_HELP" = 1 ] && ! venv_ready; then
  printf 'Usage: %s [options] [CLIENT_NAME] [WORKSPACE] [QUALITY_PROFILE]\n' "$0"
  printf 'Options: --status --stop --remove --runtime auto|docker|process --port N --show-token --yes --help\n'
  printf 'The full help (devops-paradise setup --help) comes once %s is set up: run without --help.\n' "$VENV"
  exit 0
fi
if [ ! -x "$VENV_PY" ] && [ -z "${PARADISE_VENV:-}" ]; then
  case "$ACTION" in
    status) printf 'not set up yet: no virtualenv at %s (run %s first)\n' "$VENV" "$0"; exit 1 ;;
    stop) printf 'nothing to stop: no virtualenv at %s\n' "$VENV"; exit 0 ;;
    remove) printf '%s: error: nothing to remove: there is no virtualenv at %s yet.\n' "$PROG" "$VENV" >&2; exit 1 ;;
  esac
fi

if [ "$ACTION" = setup ] && [ "$WANTS_HELP" = 0 ]; then
  if [ ! -d "$DATA_DIR" ] && mkdir -p "$DATA_DIR" 2>/dev/null; then chmod 700 "$DATA_DIR"; fi
  log "" && log "---- $(date '+%Y-%m-%d %H:%M:%S') $PROG python environment"
fi

if [ -n "${PARADISE_VENV:-}" ]; then
  [ -x "$VENV_PY" ] || fail "PARADISE_VENV=$VENV is not a virtual environment (no bin/python); point it at one or unset it."
  venv_ready || fail "PARADISE_VENV=$VENV lacks this project's dependencies; install them there (pip install -e '.[quality]') or unset PARADISE_VENV."
else
  if [ -x "$VENV_PY" ] && ! py_new_enough "$VENV_PY"; then
    fail "$VENV uses Python $(py_version "$VENV_PY") but 3.11 or newer is needed; remove it (rm -rf $VENV) and run again."
  fi
  MARKER="$VENV/.paradise-installed"
  if ! venv_ready || [ ! -f "$MARKER" ] || [ "$REPO_DIR/pyproject.toml" -nt "$MARKER" ]; then
    printf 'Preparing Python for DevOps Paradise (%s)\n' "$VENV"
    if [ ! -x "$VENV_PY" ]; then
      find_python
      info "creating $VENV"
      CREATED_VENV=1
      "$PY" -m venv "$VENV" >>"$LOG" 2>&1 </dev/null || fail "creating the virtual environment $VENV failed; see the log."
    fi
    info "installing the project into $VENV (pip install -e '.[quality]'; the first time takes a minute or two)"
    log "\$ $VENV_PY -m pip install -e ${REPO_DIR}[quality]"
    "$VENV_PY" -m pip install --disable-pip-version-check --progress-bar off -e "${REPO_DIR}[quality]" </dev/null 2>&1 \
      | while IFS= read -r line || [ -n "$line" ]; do
          log "$line"
          case "$line" in Collecting* | "Successfully installed"* | ERROR*) info "$line" ;; esac
        done
    [ "${PIPESTATUS[0]}" = 0 ] \
      || fail "installing the project into $VENV failed (pip could not finish; see the log for its last lines)."
    venv_ready || fail "the project was installed into $VENV but cannot be imported; remove $VENV and run again."
    touch "$MARKER"
    CREATED_VENV=0
  fi
fi

trap - INT TERM
export DEVOPS_PARADISE_SETUP_COMMAND="$0"
exec "$VENV_PY" -m bridge setup "$@"
