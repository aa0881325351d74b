#!/usr/bin/env bash
# start-devops-paradise.sh: one command from this checkout to Claude Code talking to your own Serena and
# quality MCP servers through the DevOps Paradise bridge. Run with --help for usage.
#
# Portable on purpose: bash 3.2 (macOS) and Linux; no associative arrays, no ${var,,}, no mapfile, no |&.
# Safe to run again: every step reuses what an earlier run made. Works without a terminal (CI).
set -u

PROG=start-devops-paradise
REPO_DIR=$(cd "$(dirname "$0")" && pwd -P)
CLIENT_RE='^[a-z0-9][a-z0-9-]{0,39}$'
STEPS=9

usage() {
  cat <<'EOF'
Usage: ./start-devops-paradise.sh [options] [CLIENT_NAME] [WORKSPACE] [QUALITY_PROFILE]

Sets up everything Claude Code needs to use your own Serena and quality MCP servers:
checks prerequisites, installs the project into .venv, prepares the runtime (Docker images or
Serena on this machine), starts the bridge in the background, registers the client, writes
WORKSPACE/.mcp.json and proves the path with a real MCP initialize + tools/list.

Arguments (all optional):
  CLIENT_NAME      client id, 1-40 of a-z 0-9 '-'   (default: $(whoami)-<short host name>)
  WORKSPACE        project directory Claude Code works in   (default: the current directory)
  QUALITY_PROFILE  quick | python | comprehensive           (default: comprehensive)

Options:
  --status           show the bridge and the client; change nothing
  --stop             stop the bridge and every instance (clients stay registered)
  --remove           delete the client, its instances and its token file (the bridge keeps running)
  --runtime R        auto | docker | process   (default: the last one used, else auto = Docker
                     when an engine answers, else local processes)
  --port N           port of the bridge (default: $PARADISE_PORT or 8100)
  --show-token       print the token itself in the export line (default: read from its file)
  --yes, -y          answer every question with yes (no prompts; needed for --remove without a terminal)
  --help, -h         this text

Environment:
  PYTHON                  interpreter used to create .venv (default: newest python3.X >= 3.11 on PATH)
  PARADISE_VENV           use this existing virtualenv instead of .venv; nothing is installed into it
                          and this checkout is put first on PYTHONPATH
  PARADISE_DATA_DIR       state, logs, pid file, tokens   (default: ~/.devops-paradise)
  PARADISE_SETUP_TIMEOUT  seconds to wait for the instances to be ready   (default: 600)
  PARADISE_BRIDGE_WAIT    seconds to wait for the bridge to answer /healthz  (default: 60)
  PARADISE_*              every other bridge setting (docs/configuration.md), e.g. PARADISE_PORT_RANGE,
                          PARADISE_SERENA_VENV
EOF
}

# ---- output ---------------------------------------------------------------------------------------

STEP_NO=0
step() {
  STEP_NO=$((STEP_NO + 1))
  printf '\n==> [%d/%d] %s   (%ss)\n' "$STEP_NO" "$STEPS" "$1" "$SECONDS"
  log "== $1 (${SECONDS}s)"
}
info() { printf '    %s\n' "$1"; }
warn() { printf '    warning: %s\n' "$1"; log "warning: $1"; }
log() { if [ -n "${LOG:-}" ] && [ -d "$(dirname "$LOG")" ]; then printf '%s\n' "$1" >>"$LOG"; fi; }

# Every failure ends here: undo what this run half-made, then one sentence and the log's path.
fail() {
  trap - INT TERM
  rollback
  log "FAILED: $1"
  printf '\n%s: error: %s\n' "$PROG" "$1" >&2
  if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then printf '%s: log: %s\n' "$PROG" "$LOG" >&2; fi
  exit 1
}

usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$1" >&2; exit 2; }

# run_shown FILTER CMD...: the output goes to the log; lines matching FILTER (an ERE; '' = all) are shown.
run_shown() {
  local filter=$1
  shift
  log "\$ $*"
  "$@" </dev/null 2>&1 | while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line" >>"$LOG"
    if [ -z "$filter" ] || printf '%s\n' "$line" | grep -Eq "$filter"; then printf "    %s\n" "$line"; fi
  done
  return "${PIPESTATUS[0]}"
}

# capture CMD...: run quietly (output to the log), keep the output in OUT and its last line in LAST.
capture() {
  log "\$ $*"
  OUT=$("$@" </dev/null 2>&1)
  local rc=$?
  if [ -n "$OUT" ]; then printf '%s\n' "$OUT" >>"$LOG"; fi
  LAST=$(printf '%s\n' "$OUT" | sed -e '/^[[:space:]]*$/d' -e 's/^devops-paradise: //' | tail -n 1)
  return $rc
}

last_log_line() { sed -e '/^[[:space:]]*$/d' -e 's/^devops-paradise: //' "$1" 2>/dev/null | tail -n 1; }

confirm() {  # confirm QUESTION DEFAULT(y|n): --yes says yes; without a terminal the default is taken
  if [ "$ASSUME_YES" = 1 ]; then return 0; fi
  if [ ! -t 0 ]; then [ "$2" = y ]; return; fi
  local hint="y/N" answer=""
  if [ "$2" = y ]; then hint="Y/n"; fi
  printf '    %s [%s] ' "$1" "$hint"
  read -r answer || answer=""
  case "$answer" in
    [yY]*) return 0 ;;
    [nN]*) return 1 ;;
    *) [ "$2" = y ] ;;
  esac
}

# ---- arguments ------------------------------------------------------------------------------------

ACTION=setup ASSUME_YES=0 SHOW_TOKEN=0 RUNTIME_ARG="" PORT_ARG=""
POSITIONAL_COUNT=0 CLIENT="" WORKSPACE="" PROFILE=""
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }
while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --status) ACTION=status ;;
    --stop) ACTION=stop ;;
    --remove) ACTION=remove ;;
    --yes | -y) ASSUME_YES=1 ;;
    --show-token) SHOW_TOKEN=1 ;;
    --runtime) need_value "$@"; RUNTIME_ARG=$2; shift ;;
    --runtime=*) RUNTIME_ARG=${1#*=} ;;
    --port) need_value "$@"; PORT_ARG=$2; shift ;;
    --port=*) PORT_ARG=${1#*=} ;;
    --) shift; break ;;
    -*) usage_error "unknown option $1" ;;
    *)
      POSITIONAL_COUNT=$((POSITIONAL_COUNT + 1))
      case $POSITIONAL_COUNT in
        1) CLIENT=$1 ;;
        2) WORKSPACE=$1 ;;
        3) PROFILE=$1 ;;
        *) usage_error "too many arguments: $1" ;;
      esac
      ;;
  esac
  shift
done

case "$RUNTIME_ARG" in "" | auto | docker | process) ;; *) usage_error "--runtime must be auto, docker or process" ;; esac
case "$PORT_ARG" in "") ;; *[!0-9]*) usage_error "--port needs a number" ;; esac

default_client() {
  local user host name
  user=$(whoami 2>/dev/null || echo user)
  host=$(hostname -s 2>/dev/null || uname -n 2>/dev/null || echo host)
  name=$(printf '%s-%s' "$user" "${host%%.*}" | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9-]/-/g' -e 's/--*/-/g')
  name=$(printf '%s' "$name" | sed -e 's/^-*//' | cut -c1-40)
  if [ -z "$name" ]; then name=paradise-user; fi
  printf '%s' "$name"
}

if [ -z "$CLIENT" ]; then CLIENT=$(default_client); fi
if ! [[ $CLIENT =~ $CLIENT_RE ]]; then
  usage_error "client name '$CLIENT' is not valid: use 1-40 lower-case letters, digits and '-', starting with a letter or digit"
fi
PROFILE=${PROFILE:-comprehensive}
if [ -z "$WORKSPACE" ]; then WORKSPACE=$PWD; fi
case "$WORKSPACE" in /*) ;; *) WORKSPACE="$PWD/$WORKSPACE" ;; esac  # relative to where it was called from
case "${PARADISE_VENV:-/}" in /*) ;; *) PARADISE_VENV="$PWD/$PARADISE_VENV" ;; esac

# ---- places ---------------------------------------------------------------------------------------

DATA_DIR=${PARADISE_DATA_DIR:-$HOME/.devops-paradise}
case "$DATA_DIR" in \~/*) DATA_DIR="$HOME/${DATA_DIR#\~/}" ;; /*) ;; *) DATA_DIR="$PWD/$DATA_DIR" ;; esac
PORT=${PORT_ARG:-${PARADISE_PORT:-8100}}
case "$PORT" in "" | *[!0-9]*) usage_error "the port must be a number, got '$PORT'" ;; esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then usage_error "--port must be between 1 and 65535"; fi
BRIDGE_URL="http://127.0.0.1:$PORT"
PID_FILE="$DATA_DIR/bridge.pid"
BRIDGE_LOG="$DATA_DIR/bridge.log"
SETUP_LOG="$DATA_DIR/setup.log"
RUNTIME_FILE="$DATA_DIR/runtime"
TOKEN_FILE="$DATA_DIR/tokens/$CLIENT"
SETUP_TIMEOUT=${PARADISE_SETUP_TIMEOUT:-600}
BRIDGE_WAIT=${PARADISE_BRIDGE_WAIT:-60}
LOG=""

export PARADISE_DATA_DIR="$DATA_DIR" PARADISE_PORT="$PORT" PARADISE_URL="$BRIDGE_URL"
# Loopback never goes through a proxy (the bridge, the CLI and the checks all talk to 127.0.0.1).
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

if [ ! -d "$DATA_DIR" ]; then NEW_DATA_DIR=1; else NEW_DATA_DIR=0; fi
if ! mkdir -p "$DATA_DIR" 2>/dev/null || [ ! -w "$DATA_DIR" ]; then
  printf '%s: error: the data directory %s cannot be created or written; set PARADISE_DATA_DIR to a writable place.\n' \
    "$PROG" "$DATA_DIR" >&2
  exit 1
fi
if [ "$NEW_DATA_DIR" = 1 ]; then chmod 700 "$DATA_DIR"; fi
LOG=$SETUP_LOG
log "" && log "---- $(date '+%Y-%m-%d %H:%M:%S') $PROG $ACTION client=$CLIENT"
cd "$REPO_DIR" || fail "cannot enter the checkout $REPO_DIR."

# ---- rollback: nothing half-made survives a failure -----------------------------------------------

CREATED_VENV=0 CREATED_CLIENT=0 STARTING_PID=""
rollback() {
  if [ "$CREATED_CLIENT" = 1 ]; then
    log "rollback: deleting client $CLIENT and its token file"
    dp client rm "$CLIENT" >>"$LOG" 2>&1 </dev/null
    rm -f "$TOKEN_FILE"
    CREATED_CLIENT=0
  fi
  if [ -n "$STARTING_PID" ]; then
    log "rollback: stopping the bridge that did not come up (pid $STARTING_PID)"
    kill "$STARTING_PID" 2>/dev/null
    rm -f "$PID_FILE"
    STARTING_PID=""
  fi
  if [ "$CREATED_VENV" = 1 ]; then
    log "rollback: removing the unfinished $VENV"
    rm -rf "$VENV"
    CREATED_VENV=0
  fi
}
trap 'fail "interrupted; everything this run had half-made was undone."' INT TERM

# ---- python and the project's virtualenv ----------------------------------------------------------

VENV="" VENV_PY="" PY=""
dp() { "$VENV_PY" -m bridge "$@"; }
py_version() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }
py_new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; }
venv_ready() {
  "$VENV_PY" -c 'import bridge.cli.common, aiohttp, httpx2, mcp, psutil, pydantic_settings, sqlmodel' >/dev/null 2>&1
}

find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
      fail "the Python interpreter '$PYTHON' (from PYTHON) was not found; point PYTHON at Python 3.11 or newer, or unset it."
    fi
    PY=$PYTHON
  else
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 && py_new_enough "$candidate"; then PY=$candidate; break; fi
    done
    if [ -z "$PY" ] && ! command -v python3 >/dev/null 2>&1; then
      fail "python3 was not found; install Python 3.11 or newer (macOS: brew install python@3.12; Debian/Ubuntu: sudo apt-get install python3 python3-venv) or set PYTHON to one."
    fi
    PY=${PY:-python3}
  fi
  if ! py_new_enough "$PY"; then
    fail "Python 3.11 or newer is needed, but $PY is Python $(py_version "$PY"); install a newer one or set PYTHON to it."
  fi
  if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    fail "$PY has no working venv module; install it (Debian/Ubuntu: sudo apt-get install python3-venv) or set PYTHON to another Python 3.11+."
  fi
  info "python    $(py_version "$PY") ($(command -v "$PY"))"
}

check_prerequisites() {
  step "Checking prerequisites"
  if [ -n "${PARADISE_VENV:-}" ]; then
    VENV=$PARADISE_VENV
  else
    VENV="$REPO_DIR/.venv"
  fi
  VENV_PY="$VENV/bin/python"
  if [ -n "${PARADISE_VENV:-}" ] && [ ! -x "$VENV_PY" ]; then
    fail "PARADISE_VENV=$VENV is not a virtual environment (no bin/python); point it at one or unset it."
  fi
  if [ -x "$VENV_PY" ]; then
    if ! py_new_enough "$VENV_PY"; then
      fail "$VENV uses Python $(py_version "$VENV_PY") but 3.11 or newer is needed; remove it (rm -rf $VENV) and run again."
    fi
    info "python    $(py_version "$VENV_PY") (virtualenv $VENV)"
  else
    find_python
  fi
  if [ -d "$WORKSPACE" ]; then
    WORKSPACE=$(cd "$WORKSPACE" && pwd -P)
  else
    fail "the workspace '$WORKSPACE' is not a directory; pass an existing project directory as the second argument."
  fi
  info "workspace $WORKSPACE"
  info "client    $CLIENT (quality profile $PROFILE)"
  info "data dir  $DATA_DIR"
}

ensure_venv() {
  step "Python environment"
  local marker="$VENV/.paradise-installed"
  if [ -n "${PARADISE_VENV:-}" ]; then
    export PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}"
    if ! venv_ready; then
      fail "PARADISE_VENV=$VENV lacks this project's dependencies; install them there (pip install -e '.[quality]') or unset PARADISE_VENV."
    fi
    info "using $VENV (PARADISE_VENV; nothing installed into it, code from $REPO_DIR)"
    return
  fi
  if [ ! -x "$VENV_PY" ]; then
    info "creating $VENV"
    CREATED_VENV=1
    capture "$PY" -m venv "$VENV" || fail "creating the virtual environment $VENV failed: $LAST"
  fi
  if venv_ready && [ -f "$marker" ] && [ ! "$REPO_DIR/pyproject.toml" -nt "$marker" ]; then
    info "up to date ($VENV)"
    return
  fi
  info "installing the project into $VENV (pip install -e '.[quality]'; the first time takes a minute or two)"
  run_shown '^(Collecting|Successfully installed|ERROR)' "$VENV_PY" -m pip install --disable-pip-version-check \
    --progress-bar off -e "${REPO_DIR}[quality]" \
    || fail "installing the project into $VENV failed (pip could not finish; see the log for its last lines)."
  venv_ready || fail "the project was installed into $VENV but cannot be imported; remove $VENV and run again."
  touch "$marker"
  CREATED_VENV=0
}

check_profile() {
  local known
  known=$("$VENV_PY" -c 'from instances.quality.profiles import load_profiles; print(" ".join(sorted(load_profiles())))' 2>>"$LOG")
  case " $known " in
    *" $PROFILE "*) ;;
    *) fail "unknown quality profile '$PROFILE'; choose one of: $known." ;;
  esac
}

# ---- the bridge -----------------------------------------------------------------------------------

# bridge_health: prints the runtime of the bridge answering at BRIDGE_URL; fails when none answers.
bridge_health() {
  "$VENV_PY" - "$BRIDGE_URL" <<'PY' 2>/dev/null
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=2) as answer:
        body = json.load(answer)
except Exception:
    sys.exit(1)
if not isinstance(body, dict) or body.get("status") != "ok":
    sys.exit(1)
print(body.get("runtime", "unknown"))
PY
}

port_taken() {  # true when the bridge could not bind the port (a listener, or any other socket holding it)
  "$VENV_PY" - "$PORT" <<'PY' 2>/dev/null
import socket, sys
with socket.socket() as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(0)
sys.exit(1)
PY
}

bridge_pid() {  # the pid in the pid file when that process is still alive
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  case "$pid" in "" | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
}

json_field() {  # json_field PATH < json: one value by dotted path (true/false for booleans)
  "$VENV_PY" -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print({True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else value)
' "$1" 2>>"$LOG"
}

RUNTIME="" RUNNING_RUNTIME=""
choose_runtime() {
  step "Choosing the runtime"
  RUNNING_RUNTIME=$(bridge_health) || RUNNING_RUNTIME=""
  local wanted=$RUNTIME_ARG why="asked for"
  if [ -z "$wanted" ] && [ -s "$RUNTIME_FILE" ]; then wanted=$(cat "$RUNTIME_FILE"); why="used last time; --runtime to change"; fi
  if [ -z "$wanted" ]; then wanted=${PARADISE_RUNTIME:-auto}; why="PARADISE_RUNTIME"; fi
  if [ -n "$RUNNING_RUNTIME" ]; then
    RUNTIME=$RUNNING_RUNTIME
    info "the bridge already runs at $BRIDGE_URL with the $RUNTIME runtime"
    if [ -n "$RUNTIME_ARG" ] && [ "$RUNTIME_ARG" != auto ] && [ "$RUNTIME_ARG" != "$RUNTIME" ]; then
      warn "--runtime $RUNTIME_ARG applies when the bridge starts; run --stop first to switch"
    fi
    return
  fi
  capture dp --json doctor
  DOCTOR=$OUT
  local engine
  engine=$(printf '%s' "$DOCTOR" | json_field docker.engine)
  case "$wanted" in
    process) RUNTIME=process; info "process runtime ($why)" ;;
    docker)
      [ "$engine" = true ] || fail "the docker runtime was asked for but no Docker engine answers; start Docker (Docker Desktop, or scripts/ensure-docker.sh on Linux) or use --runtime process."
      RUNTIME=docker
      info "docker runtime ($why; $(printf '%s' "$DOCTOR" | json_field docker.detail))"
      ;;
    auto)
      if [ "$engine" = true ]; then
        RUNTIME=docker
        info "docker runtime: a Docker engine answers (use --runtime process for local processes)"
      else
        RUNTIME=process
        info "process runtime: no Docker engine answers"
      fi
      ;;
    *) RUNTIME=$wanted; info "$RUNTIME runtime ($why; the bridge checks what it needs when it starts)" ;;
  esac
}

missing_images() {
  printf '%s' "$DOCTOR" | "$VENV_PY" -c '
import json, sys
print(" ".join(image for image, ok in json.load(sys.stdin)["docker"]["images"].items() if not ok))' 2>>"$LOG"
}

prepare_runtime() {
  step "Preparing the $RUNTIME runtime"
  case "$RUNTIME" in
    docker) prepare_docker ;;
    process) prepare_process ;;
    *) info "nothing to prepare on this machine for the $RUNTIME runtime" ;;
  esac
}

prepare_docker() {
  [ -n "${DOCTOR:-}" ] || { capture dp --json doctor; DOCTOR=$OUT; }
  local missing
  missing=$(missing_images)
  if [ -z "$missing" ]; then
    info "images present"
    return
  fi
  info "images to build: $missing"
  if ! confirm "Build the Docker images now (a few minutes the first time)?" y; then
    fail "the docker runtime needs its images; build them with 'devops-paradise images build' or use --runtime process."
  fi
  run_shown '' dp images build \
    || fail "building the Docker images failed; see the log, or run with --runtime process to use local processes instead."
}

prepare_process() {
  if command -v node >/dev/null 2>&1; then
    info "node      $(node --version 2>/dev/null) (runs Serena's pyright language server)"
  else
    warn "node was not found; Serena's pyright will use the Node.js wheel from PyPI (install Node.js 18+ to use your own: https://nodejs.org, brew install node, or apt-get install nodejs)"
  fi
  local venv=${PARADISE_SERENA_VENV:-$DATA_DIR/serena-venv}
  if "$VENV_PY" -c 'import sys; from bridge.host.serena_install import serena_installed; sys.exit(0 if serena_installed(sys.argv[1]) else 1)' "$venv" 2>>"$LOG"; then
    info "Serena installed ($venv)"
    return
  fi
  if ! confirm "Install Serena into $venv now (downloads about 100 MB once)?" y; then
    fail "the process runtime needs Serena; install it with 'devops-paradise doctor --install serena' or use --runtime docker."
  fi
  info "installing Serena into $venv (first time only)"
  run_shown '' dp doctor --install serena \
    || fail "installing Serena failed; see the log (pip and pyright output), then run this script again."
}

SERVE_IN_NEW_SESSION='
import os, sys
try:
    os.setsid()
except OSError:
    pass
os.execv(sys.executable, [sys.executable, "-m", "bridge", "serve"])'

start_bridge() {
  step "Starting the bridge"
  if [ -n "$RUNNING_RUNTIME" ]; then
    info "already running at $BRIDGE_URL (pid $(bridge_pid || echo '?'), log $BRIDGE_LOG)"
    capture dp client list \
      || fail "a bridge answers on port $PORT but does not accept the admin token of $DATA_DIR ($LAST); stop it or choose another port with --port."
    return
  fi
  local old
  if old=$(bridge_pid); then
    fail "the bridge of $DATA_DIR (pid $old) runs but does not answer on $BRIDGE_URL (another --port?); stop it with --stop and run again."
  fi
  if port_taken; then
    fail "port $PORT is in use by another program; choose another port with --port."
  fi
  LOG=$BRIDGE_LOG
  printf '\n---- %s started by %s (runtime %s)\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$PROG" "$RUNTIME" >>"$BRIDGE_LOG"
  # its own session: a Ctrl-C of this script (or of the terminal later) never reaches the bridge
  (cd "$REPO_DIR" && PARADISE_RUNTIME=$RUNTIME exec nohup "$VENV_PY" -c "$SERVE_IN_NEW_SESSION" \
    >>"$BRIDGE_LOG" 2>&1 </dev/null) &
  STARTING_PID=$!
  printf '%s\n' "$STARTING_PID" >"$PID_FILE"
  info "pid $STARTING_PID, log $BRIDGE_LOG; waiting for $BRIDGE_URL/healthz"
  local tries=$((BRIDGE_WAIT * 4))
  while [ "$tries" -gt 0 ]; do
    if bridge_health >/dev/null; then break; fi
    if ! kill -0 "$STARTING_PID" 2>/dev/null; then
      case "$(last_log_line "$BRIDGE_LOG")" in
        *"address already in use"*) fail "port $PORT is in use by another program; choose another port with --port." ;;
      esac
      fail "the bridge stopped during start-up: $(last_log_line "$BRIDGE_LOG")"
    fi
    sleep 0.25
    tries=$((tries - 1))
  done
  [ "$tries" -gt 0 ] || fail "the bridge did not answer on $BRIDGE_URL within ${BRIDGE_WAIT}s."
  STARTING_PID=""
  LOG=$SETUP_LOG
  printf '%s\n' "$RUNTIME" >"$RUNTIME_FILE"
  info "the bridge answers ($RUNTIME runtime)"
}

# ---- the client -----------------------------------------------------------------------------------

register_client() {
  step "Registering client $CLIENT"
  capture dp --json client show "$CLIENT"
  case $? in
    0) reuse_client ;;
    4) new_client ;;
    *) fail "asking the bridge about client $CLIENT failed: $LAST" ;;
  esac
}

new_client() {
  rm -f "$TOKEN_FILE"  # a token of an earlier client of this name is worthless now
  capture dp client add "$CLIENT" --workspace "$WORKSPACE" --profile "$PROFILE" --wait 0 --token-file "$TOKEN_FILE" \
    || fail "registering client $CLIENT failed: $LAST"
  CREATED_CLIENT=1
  info "registered; token stored in $TOKEN_FILE (mode 600)"
}

reuse_client() {
  local json=$OUT registered
  registered=$(printf '%s' "$json" | json_field workspace)
  if [ "$registered" != "$WORKSPACE" ]; then
    fail "client $CLIENT is already registered for the workspace $registered; use another client name or remove it first with --remove $CLIENT."
  fi
  info "already registered (reusing it)"
  local profile
  profile=$(printf '%s' "$json" | json_field profile)
  if [ "$profile" != "$PROFILE" ]; then
    warn "client $CLIENT keeps its quality profile '$profile'; to change it, --remove it and run again"
  fi
  if printf '%s' "$json" | grep -q '"state": "failed"'; then
    info "an instance had failed: restarting the client's instances"
    capture dp client restart "$CLIENT" || fail "restarting the instances of $CLIENT failed: $LAST"
  fi
  if [ -s "$TOKEN_FILE" ]; then
    info "reusing the token in $TOKEN_FILE"
  else
    capture dp client token "$CLIENT" --token-file "$TOKEN_FILE" || fail "issuing a new token for $CLIENT failed: $LAST"
    info "no stored token for $CLIENT: issued a new one into $TOKEN_FILE (older copies stop working)"
  fi
}

wait_ready() {
  step "Waiting for the instances of $CLIENT"
  run_shown '' dp client wait "$CLIENT" --timeout "$SETUP_TIMEOUT" \
    || fail "the instances of $CLIENT did not become ready: $(last_log_line "$LOG")"
  CREATED_CLIENT=0  # registered and ready: from here on the client is complete
}

write_config() {
  step "Writing the Claude Code configuration"
  capture dp mcp-config "$CLIENT" --write "$WORKSPACE" \
    || fail "could not write $WORKSPACE/.mcp.json: $LAST"
  printf '%s\n' "$OUT" | grep -E '^(wrote|.*already up to date)' | sed -e 's/^/    /'
}

prove() {
  step "Proving the path: MCP initialize + tools/list through the bridge"
  if run_shown '' dp check "$CLIENT" --mcp-json "$WORKSPACE/.mcp.json" --token-file "$TOKEN_FILE" --timeout 120; then
    return
  fi
  local why
  why=$(last_log_line "$LOG")
  case "$why" in
    *"refused the token"*) fail "the bridge refused the token in $TOKEN_FILE; delete that file and run this script again to get a new one." ;;
    *) fail "the MCP check through the bridge failed: $why" ;;
  esac
}

summary() {
  local pid lines export_line
  pid=$(bridge_pid || echo '?')
  capture dp mcp-config "$CLIENT"
  lines=$(printf '%s\n' "$OUT" | grep '^claude mcp add')
  if [ "$SHOW_TOKEN" = 1 ]; then
    export_line="export DEVOPS_PARADISE_TOKEN=$(cat "$TOKEN_FILE")"
  else
    export_line="export DEVOPS_PARADISE_TOKEN=\"\$(cat '$TOKEN_FILE')\""
  fi
  cat <<EOF

DevOps Paradise is ready for $CLIENT ($RUNTIME runtime, ${SECONDS}s).

  workspace    $WORKSPACE   (.mcp.json: paradise-serena, paradise-quality)
  bridge       $BRIDGE_URL   (pid $pid, log $BRIDGE_LOG)
  token file   $TOKEN_FILE   (mode 600; never commit it)
  setup log    $SETUP_LOG

Before starting Claude Code in the workspace, put the token in its environment:

  $export_line

Or register the servers with Claude Code by hand (same token variable):

$(printf '%s\n' "$lines" | sed -e 's/^/  /')

Later: $0 --status | --stop | --remove $CLIENT
EOF
}

# ---- the other actions ----------------------------------------------------------------------------

need_venv() {
  VENV=${PARADISE_VENV:-$REPO_DIR/.venv}
  VENV_PY="$VENV/bin/python"
  if [ -n "${PARADISE_VENV:-}" ]; then export PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}"; fi
  [ -x "$VENV_PY" ]
}

do_status() {
  if ! need_venv; then
    printf 'not set up yet: no virtualenv at %s (run %s first)\n' "$VENV" "$0"
    exit 1
  fi
  local runtime
  if ! runtime=$(bridge_health); then
    printf 'bridge: not running at %s (data dir %s)\n' "$BRIDGE_URL" "$DATA_DIR"
    exit 1
  fi
  printf 'bridge: running at %s (pid %s, runtime %s, log %s)\n\n' "$BRIDGE_URL" "$(bridge_pid || echo '?')" "$runtime" "$BRIDGE_LOG"
  if ! capture dp client show "$CLIENT"; then
    printf 'client %s: %s\n' "$CLIENT" "$LAST"
    exit 1
  fi
  printf '%s\n' "$OUT"
  if [ -s "$TOKEN_FILE" ]; then printf '\ntoken file %s\n' "$TOKEN_FILE"; else printf '\nno token file (%s)\n' "$TOKEN_FILE"; fi
}

do_stop() {
  if ! need_venv; then
    printf 'nothing to stop: no virtualenv at %s\n' "$VENV"
    exit 0
  fi
  printf 'stopping the bridge and its instances (clients stay registered)\n'
  run_shown '' dp stop || fail "stopping failed: $(last_log_line "$LOG")"
}

do_remove() {
  need_venv || fail "nothing to remove: there is no virtualenv at $VENV yet."
  if ! bridge_health >/dev/null; then
    fail "the bridge is not running at $BRIDGE_URL; start it with $0 (or the same command without --remove), then remove the client."
  fi
  if [ "$ASSUME_YES" != 1 ] && [ ! -t 0 ]; then
    fail "--remove deletes client $CLIENT; add --yes to confirm when there is no terminal."
  fi
  confirm "Delete client $CLIENT, its instances and its token?" n || { printf 'nothing removed\n'; exit 0; }
  capture dp client rm "$CLIENT" || fail "removing client $CLIENT failed: $LAST"
  rm -f "$TOKEN_FILE"
  printf '%s\n' "$LAST"
  printf 'token file %s deleted; the bridge keeps running (stop it with --stop).\n' "$TOKEN_FILE"
  printf "the workspace's .mcp.json still lists paradise-serena and paradise-quality: remove them or run the setup again.\n"
}

case "$ACTION" in
  status) do_status; exit $? ;;
  stop) do_stop; exit 0 ;;
  remove) do_remove; exit 0 ;;
esac

printf 'DevOps Paradise setup: client %s, workspace %s\n' "$CLIENT" "${WORKSPACE}"
check_prerequisites
ensure_venv
check_profile
choose_runtime
prepare_runtime
start_bridge
register_client
wait_ready
write_config
prove
summary
