"""nbterm: a keyboard-driven terminal cockpit for Jupyter on remote machines."""

__version__ = "0.1.0"
