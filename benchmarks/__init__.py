"""Per-block benchmarks of ratlip-layers against a straightforward baseline (see bench_blocks.py)."""
