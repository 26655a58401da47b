"""The fastfit version, written into saved files and JSON configs (`fastfit.__version__` re-exports it)."""
__version__ = "0.1.0"
