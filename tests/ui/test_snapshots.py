"""Snapshots of every scene the README shows (screenshots/scenes.py), with what ticks frozen.

After a deliberate change to the screen: `.venv/bin/pytest tests/ui/test_snapshots.py
--snapshot-update`, read the snapshot report first, and regenerate the README's pictures with
`.venv/bin/python -m screenshots.generate`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from screenshots.scenes import SCENES, SIZE, install_example, make_app

from nbterm.app import NbtermApp
from nbterm.locations import resolve_paths


@pytest.mark.parametrize("scene", sorted(SCENES))
def test_scene(scene: str, snap_compare: Callable[..., bool], isolated_home: Path) -> None:
    install_example(isolated_home)

    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        await SCENES[scene](pilot)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_first_run(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(NbtermApp(resolve_paths(), None), terminal_size=SIZE)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
def test_main_screen_at(
    size: tuple[int, int], snap_compare: Callable[..., bool], isolated_home: Path
) -> None:
    """The scenes are at 120x36; the smallest terminal and a wide one keep every key column."""
    install_example(isolated_home)

    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        await SCENES["main"](pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
