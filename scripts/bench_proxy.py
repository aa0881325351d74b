"""Proxy throughput and latency, bridge against a bare aiohttp proxy: ``python scripts/bench_proxy.py [options]``.

The benchmark is scripts/bench/proxy.py; this file runs it as ``python -m scripts.bench.proxy`` from the
repository root, where its imports (scripts.bench, tests.helpers) resolve. Options: ``--seconds``,
``--rounds``, ``--connections`` (see ``--help``).
"""

import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.exit(subprocess.call([sys.executable, "-m", "scripts.bench.proxy", *sys.argv[1:]], cwd=root))
