"""`cthulhu.deities`: the layers under their cthulhu names; layers cthulhu did not rename keep their names."""
from fastfit.layers import Activation, Dense, Dropout, Flatten, Input, InputLayer

Daoloth = Dense
Azatoth = Activation
Darkness = Dropout

__all__ = ["Daoloth", "Azatoth", "Darkness", "Flatten", "Input", "InputLayer"]
