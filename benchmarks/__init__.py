"""fastfit's benchmark suite: throughput against peers and the GEMM ceiling, overheads, GIL, memory.

Run `python -m benchmarks --help`; see benchmarks/README.md.
"""
