"""Bridges to other libraries' APIs: `fastfit.wrappers.scikit_learn` (needs scikit-learn, imported there only)."""
