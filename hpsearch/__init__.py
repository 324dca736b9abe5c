"""hpsearch: hyperparameter search for from-scratch NumPy networks."""

__version__ = "0.1.0"
