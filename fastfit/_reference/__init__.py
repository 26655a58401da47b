"""The pure-NumPy reference engine: the correctness oracle for the Cython engine and the pure-Python baseline.

One module per kernel family (`activations`, `losses`, `metrics`, `dense`, `rng`, `optim`); `loop.Network`
runs them with the engine contract of docs/architecture.md.
"""
