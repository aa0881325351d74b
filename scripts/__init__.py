"""Scripts of the project: benchmarks (bench/) and generators of docs/; run them with ``python -m scripts...``."""
