"""Model machinery: layers' base class, the functional graph, training and input handling."""
