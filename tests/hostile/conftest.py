"""The hostile-remote suite's world (sshd, one remote folder, one rule): tests/harness/world.py."""

from tests.harness.world import World, world

__all__ = ["World", "world"]
