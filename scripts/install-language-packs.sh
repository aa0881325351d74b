#!/usr/bin/env bash
# Serena's language packs for the tests' Serena venv (or $PARADISE_SERENA_VENV): Serena itself, then each
# pinned language server from its registry (npm, PyPI, Debian as root), once. Quick when all is installed:
# every step checks first. Needs only python3 (3.11-3.14) and npm; runs before .venv exists (.ci/run).
# Usage: scripts/install-language-packs.sh [LANGUAGES, comma-separated, default all]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${PARADISE_SERENA_VENV:-$HOME/.cache/devops-paradise/serena-venv}
export PYTHONPATH=$PWD  # bridge.host.* and instances.serena.* use the standard library only
"$python" -c 'import sys; from pathlib import Path; from bridge.host.serena_install import install_serena
install_serena(Path(sys.argv[1]))' "$venv"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
   && ! { command -v gopls && command -v go && command -v shellcheck; } >/dev/null 2>&1; then
  echo "==> Debian packs: gopls golang-go shellcheck"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gopls golang-go shellcheck >/dev/null
fi
exec "$python" -m bridge.host.language_packs --venv "$venv" --languages "${1:-all}"
