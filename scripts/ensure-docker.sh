#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`. Idempotent; safe to run again and again.
#
#   scripts/ensure-docker.sh            reuse a running engine, else install and start one
#
# 1. A running engine (DOCKER_HOST or the default socket) is reused as is.
# 2. Otherwise, on Debian/Ubuntu as root: install docker.io (and debootstrap, for the registry-free base
#    image of scripts/build-base-image.sh) with apt, then start dockerd in the background
#    (log: /var/log/dockerd.log, or a temp file when /var/log is not writable) and wait for it.
# 3. Anywhere else: a one-line error saying what to do.
# Exit status 0 only when `docker info` works at the end.
#
# Environment: DOCKER_WAIT (seconds to wait for the engine, default 60),
#              DOCKERD_LOG (dockerd's log file), DOCKERD_ARGS (extra dockerd arguments).
set -euo pipefail

WAIT=${DOCKER_WAIT:-60}
say() { echo "ensure-docker: $*" >&2; }
fail() { say "error: $*"; exit 1; }

engine_answers() { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }

wait_for_engine() {
  local deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    if engine_answers; then return 0; fi
    if [[ -n "${1:-}" ]] && ! kill -0 "$1" 2>/dev/null; then return 1; fi
    sleep 1
  done
  return 1
}

if engine_answers; then
  say "engine already running ($(docker info --format '{{.ServerVersion}}' 2>/dev/null || echo '?'))"
  exit 0
fi

# A daemon may be starting (another run of this script, or a service manager): give it a moment.
if pgrep -x dockerd >/dev/null 2>&1; then
  say "dockerd is running but not answering yet; waiting up to ${WAIT}s"
  wait_for_engine && { say "engine ready"; exit 0; }
  fail "dockerd (pid $(pgrep -x dockerd | head -1)) does not answer 'docker info'; see ${DOCKERD_LOG:-/var/log/dockerd.log}"
fi

[[ $(id -u) -eq 0 ]] || fail "no Docker engine answers and this is not root: start Docker (or Docker Desktop) yourself, or re-run as root to install docker.io"

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || fail "no dockerd and no apt-get: install Docker Engine for this OS (https://docs.docker.com/engine/install/)"
  say "installing docker.io and debootstrap with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || fail "apt-get update failed (check /etc/apt/sources.list* and the network)"
  apt-get install -y -qq --no-install-recommends docker.io debootstrap iptables ca-certificates >&2 \
    || fail "apt-get install docker.io failed"
fi
command -v dockerd >/dev/null 2>&1 || fail "docker.io is installed but dockerd is not on PATH"

# A stale pid file from a killed daemon keeps a new one from starting.
if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid 2>/dev/null)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi

LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
if ! { : >>"$LOG"; } 2>/dev/null; then
  LOG=$(mktemp -t dockerd.XXXXXX.log)
fi
say "starting dockerd in the background (log: $LOG)"
# shellcheck disable=SC2086  # DOCKERD_ARGS is a list of words on purpose
nohup setsid dockerd ${DOCKERD_ARGS:-} >>"$LOG" 2>&1 </dev/null &
DOCKERD_PID=$!

if wait_for_engine "$DOCKERD_PID"; then
  say "engine ready ($(docker info --format '{{.ServerVersion}} {{.Driver}}' 2>/dev/null), pid $DOCKERD_PID)"
  exit 0
fi
if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
  fail "dockerd exited; last log line: $(tail -n 1 "$LOG" 2>/dev/null)"
fi
fail "dockerd did not answer within ${WAIT}s; see $LOG"
