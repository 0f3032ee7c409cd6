"""The garbage collector during the cockpit's start-up (the way to its first screen).

Start-up creates objects that live as long as the app (the modules and their classes, the
widgets, the styles), and the collector's passes over them found nothing to collect: about 35 ms
of the first screen's wait (a full pass over the imports alone took 25-33 ms). So collections are
held from the start until the first frame is on screen; then what is alive is frozen (left out
of later passes: it lives until the end anyway) and collections go on as usual, over what is
new. ``resume`` does nothing when nothing was held (the app under test).
"""

from __future__ import annotations

import gc

_held = False


def hold() -> None:
    """No collections until ``resume`` (the start of the cockpit's way to its first screen)."""
    global _held
    _held = gc.isenabled()
    gc.disable()


def resume() -> None:
    """The first frame is on screen: leave what is alive now out of later passes, and collect."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()
