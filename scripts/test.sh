#!/usr/bin/env bash
# The project's test command (README "Tests"): set up .venv if needed, lint, then run the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import bridge, mcp, pytest_asyncio, bandit" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "==> installing the project and its test tools into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[quality,test]'
  touch .venv/.installed
fi

echo "==> ruff"
.venv/bin/ruff check .

echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
