"""``nbterm``: with no command it opens the cockpit; every action also has a headless twin."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from nbterm import __version__
from nbterm.cli.common import EXIT_CONFIG, CliError, fail
from nbterm.cli.parsers import register_all
from nbterm.locations import default_config_file, tildify


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbterm",
        description="A keyboard-driven terminal cockpit for Jupyter on remote machines.",
        epilog="With no command, nbterm opens the cockpit. Run inside tmux.",
    )
    parser.add_argument("--version", action="version", version=f"nbterm {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $NBTERM_CONFIG, then "
        f"{tildify(default_config_file())} on this machine)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="try nbterm with no AWS account and no ssh server: a local EC2, SSH server and "
        "Jupyter on 127.0.0.1, removed when you quit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(commands)
    return parser


Handler = Callable[[argparse.Namespace], int]


def resolve_handler(name: str) -> Handler:
    """A command's handler from its ``module:function`` name (imported only when it runs)."""
    module, _, function = name.partition(":")
    handler: Handler = getattr(importlib.import_module(module), function)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from nbterm.cli.run_app import run_app

            return run_app(args.config, demo=args.demo)
        return resolve_handler(args.handler)(args)
    except CliError as exc:
        return fail(str(exc), exc.code)
    except KeyboardInterrupt:
        return 130


__all__ = ["EXIT_CONFIG", "build_parser", "main", "resolve_handler"]

if __name__ == "__main__":
    sys.exit(main())
