"""The hostile-remote suite shares the fault suite's world (sshd, one remote folder, one rule)."""

from tests.faults.conftest import World, world

__all__ = ["World", "world"]
