"""Start the Textual app (imported only when the cockpit is opened, to keep commands fast)."""

from __future__ import annotations

import gc

from nbterm import startup
from nbterm.cli.common import EXIT_CONFIG, fail
from nbterm.config import ConfigError, ConfigNotFoundError, LoadedConfig, load_config
from nbterm.locations import resolve_paths


def run_app(config_file: str | None, *, demo: bool = False) -> int:
    """The cockpit on ``config_file`` (None: the default one), or on the demo's own world."""
    if demo:
        return _run_demo()
    startup.hold()  # until the first frame (nbterm/startup.py)
    paths = resolve_paths(config_file)
    config: LoadedConfig | None
    try:
        config = load_config(paths.config_file)
    except ConfigNotFoundError:
        config = None  # the app opens on its first-run screen
    except ConfigError as exc:
        startup.resume()
        return fail(f"invalid config\n{exc}", EXIT_CONFIG)
    from nbterm.app import NbtermApp

    NbtermApp(paths, config).run()
    _skip_the_last_collections()
    return 0


def _run_demo() -> int:
    try:
        from nbterm.demo.world import DemoWorld
    except ImportError as exc:  # moto or jupyter-server missing
        return fail(f"the demo needs the demo extra: pip install 'nbterm-cockpit[demo]' ({exc})")
    from nbterm.app import NbtermApp

    world = DemoWorld()
    print("nbterm demo: starting a local EC2, an SSH server and Jupyter on 127.0.0.1…", flush=True)
    try:
        world.start()
        paths = resolve_paths(world.config_file)
        NbtermApp(paths, load_config(paths.config_file)).run()
    finally:
        world.close()
    print("nbterm demo: everything it started has been stopped and removed")
    _skip_the_last_collections()
    return 0


def _skip_the_last_collections() -> None:
    """Leave the objects alive now out of the collections the interpreter runs as it exits.

    By here every process, connection and file nbterm opened has been closed and written (the
    journal writes through ``os.write`` per event; logging flushes its handlers at exit, after
    this). What is left is memory the operating system takes back whole, and the collector's
    passes over it at exit took 0.7-0.85 s after the demo (250,000 objects, most of them moto's
    and botocore's): the wait between ``q`` and the shell.
    """
    gc.freeze()
