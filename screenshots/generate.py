"""Regenerate the README's screenshots from the app: `.venv/bin/python screenshots/generate.py`.

Each screen is rendered at a fixed size from config/example.toml, in a throwaway home, so the
pictures never go stale and never show the machine they were made on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _isolate(home: Path) -> None:
    os.environ["HOME"] = str(home)
    os.environ["NBTERM_CONFIG"] = str(home / ".config" / "nbterm" / "config.toml")
    os.environ["NBTERM_STATE_DIR"] = str(home / "state")
    os.environ["NBTERM_RUNTIME_DIR"] = str(home / "run")


async def _shoot(
    name: str, with_config: bool, before: Callable[..., Awaitable[None]] | None = None
) -> None:
    from nbterm.app import NbtermApp
    from nbterm.config import load_config
    from nbterm.locations import resolve_paths

    paths = resolve_paths()
    config = load_config(paths.config_file) if with_config else None
    app = NbtermApp(paths, config)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        if before is not None:
            await before(pilot)
        await pilot.pause()
        app.save_screenshot(f"{name}.svg", str(HERE))
    print(f"wrote screenshots/{name}.svg")


async def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="nbterm-shots-"))
    try:
        _isolate(home)
        await _shoot("first-run", with_config=False)
        config_file = home / ".config" / "nbterm" / "config.toml"
        config_file.parent.mkdir(parents=True, mode=0o700)
        shutil.copy(ROOT / "config" / "example.toml", config_file)
        config_file.chmod(0o600)
        key = home / ".ssh" / "nbterm-ed25519"
        key.parent.mkdir(mode=0o700)
        key.write_text("placeholder, never read\n")
        key.chmod(0o600)
        await _shoot("main", with_config=True)

        async def open_help(pilot: object) -> None:
            await pilot.press("question_mark")  # type: ignore[attr-defined]

        await _shoot("help", with_config=True, before=open_help)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tui"))
    asyncio.run(main())
