"""The benchmarks, one module each: ``python -m scripts.bench.<name>``; the health set: ``python -m scripts.bench``."""
