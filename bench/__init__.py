"""Benchmarks, run by hand from the repository root as modules (``python -m bench.stages``), never
as timed tests. Each module imports without nnsight or a GPU (tests/test_bench.py imports them
all); ``bench.common`` holds what they share."""
