"""Health and scale figures: healing after a kill, waking from idle, 200 clients, 2,000 open SSE streams.

    python -m scripts.bench [--only death,wake,sessions,scale,streams] [--repeat 5]
                            [--clients 200 --running 50] [--streams 2000] [--keep]

Runs the parts scripts/bench/{death,wake,sessions,scale,streams}.py one after another, each with its own bridge
(see their docstrings and scripts/bench/common.py). Takes about 6 minutes on 2 CPUs. Prints the machine,
the settings of each bridge, a table per part, the warnings and errors of the bridge logs, and one JSON
line with every figure.
"""

from __future__ import annotations

from scripts.bench import death, scale, sessions, streams, wake
from scripts.bench.common import main

if __name__ == "__main__":
    main([death, wake, sessions, scale, streams], title="bench_health", description=__doc__.splitlines()[0])
