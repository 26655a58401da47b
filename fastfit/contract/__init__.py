"""The engine contract: what both engines (Cython `fastfit._ext._loop`, NumPy `fastfit._reference.loop`) agree
on, in one place (docs/architecture.md, "The engine contract").

`names` (the canonical names and their Cython codes), `checks` (the argument checks), `ops` (the op-list
parser), `optimizer` (the optimizer reader) and `modes` (call modes and hook phases). This package imports
nothing from fastfit but itself.
"""
