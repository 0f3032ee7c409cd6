"""Regenerate the README's screenshots from the app: `.venv/bin/python -m screenshots.generate`.

Each scene (screenshots/scenes.py) is rendered at a fixed size from config/example.toml in a
throwaway home, so the pictures never go stale and never show the machine they were made on.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from screenshots.scenes import SCENES, SIZE, install_example, make_app, remove

HERE = Path(__file__).resolve().parent


def _isolate(home: Path) -> None:
    os.environ.update(
        HOME=str(home),
        NBTERM_CONFIG=str(home / ".config" / "nbterm" / "config.toml"),
        NBTERM_STATE_DIR=str(home / "state"),
        NBTERM_RUNTIME_DIR=str(home / "run"),
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # nothing here may reach AWS
        AWS_ACCESS_KEY_ID="screenshots",
        AWS_SECRET_ACCESS_KEY="screenshots",
        AWS_DEFAULT_REGION="us-east-1",
    )


async def _shoot(name: str) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await SCENES[name](pilot)
        app.save_screenshot(f"{name}.svg", str(HERE))
    print(f"wrote screenshots/{name}.svg")


async def _first_run(home: Path) -> None:
    from nbterm.app import NbtermApp
    from nbterm.locations import resolve_paths

    app = NbtermApp(resolve_paths(), None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.save_screenshot("first-run.svg", str(HERE))
    print("wrote screenshots/first-run.svg")


async def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="nbterm-shots-"))
    try:
        _isolate(home)
        await _first_run(home)
        install_example(home)
        for name in SCENES:
            await _shoot(name)
    finally:
        remove(home)


if __name__ == "__main__":
    asyncio.run(main())
