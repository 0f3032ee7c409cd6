"""The per-rule lock: one holder at a time, who holds it in words, and the holder's name."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from nbterm.services.sync import rule_lock
from nbterm.services.sync.rule_lock import RuleLock


@pytest.mark.parametrize(
    ("argv", "face"),
    [
        (["nbterm"], "the cockpit"),
        (["nbterm", "up", "box"], "nbterm up"),
        (["nbterm", "--config", "conf", "sync", "--watch"], "nbterm sync"),
        (["nbterm", "--config", "my.toml"], "the cockpit"),
    ],
)
def test_the_holder_is_named_as_a_person_would(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], face: str
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert rule_lock.this_face() == face


async def test_one_holder_at_a_time_said_by_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["nbterm", "up", "box"])
    path = tmp_path / "rule" / "lock"
    first, second = RuleLock(path), RuleLock(path)
    assert first.try_acquire()
    assert not second.try_acquire()  # (flock: per open file, so even in one process)
    assert second.holder() == f"pid {os.getpid()}, nbterm up"
    assert not await second.acquire(0.2)
    first.release()
    assert await second.acquire(0.2)
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    second.release()
    path.write_text("garbage")
    assert RuleLock(path).holder() == "another nbterm"
