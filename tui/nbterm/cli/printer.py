"""The headless commands print service events with the shared presenter."""

from nbterm.presenters import Printer, size

__all__ = ["Printer", "size"]
