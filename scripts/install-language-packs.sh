#!/usr/bin/env bash
# Serena's language packs for the tests' Serena venv (or $PARADISE_SERENA_VENV): Serena itself, then each
# pinned language server from its registry (npm, PyPI, Debian as root), once. Quick when all is installed:
# every step checks first. Usage: scripts/install-language-packs.sh [LANGUAGES, default all]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
venv=${PARADISE_SERENA_VENV:-$HOME/.cache/devops-paradise/serena-venv}
"$python" -c "
from pathlib import Path
from bridge.host.serena_install import install_serena
install_serena(Path('$venv'))"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
   && ! { command -v gopls && command -v go && command -v shellcheck; } >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gopls golang-go shellcheck >/dev/null
fi
exec "$python" -m bridge.host.language_packs --venv "$venv" --languages "${1:-all}"
