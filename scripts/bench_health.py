"""Health and scale figures (healing, wake, scale, streams): ``python scripts/bench_health.py [options]``.

The benchmarks live in scripts/bench/, one module each; this file only runs them all as
``python -m scripts.bench`` from the repository root, where their imports (scripts.bench, tests.helpers)
resolve. Options: see ``python -m scripts.bench --help``.
"""

import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.exit(subprocess.call([sys.executable, "-m", "scripts.bench", *sys.argv[1:]], cwd=root))
