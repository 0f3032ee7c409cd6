"""nbterm: a keyboard-driven terminal cockpit for Jupyter on remote machines."""

import os

__version__ = "0.1.0"

# pydantic scans every installed package's entry points for plugins on first use (about 30 ms of
# nbterm's start-up); nbterm uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
