"""Start the Textual app (imported only when the cockpit is opened, to keep commands fast)."""

from __future__ import annotations

import argparse

from nbterm.cli.common import EXIT_CONFIG, fail, paths_for
from nbterm.config import ConfigError, ConfigNotFoundError, LoadedConfig, load_config


def run_app(args: argparse.Namespace) -> int:
    paths = paths_for(args)
    config: LoadedConfig | None
    try:
        config = load_config(paths.config_file)
    except ConfigNotFoundError:
        config = None  # the app opens on its first-run screen
    except ConfigError as exc:
        return fail(f"invalid config\n{exc}", EXIT_CONFIG)
    from nbterm.app import NbtermApp

    NbtermApp(paths, config).run()
    return 0
