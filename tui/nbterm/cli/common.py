"""What the headless commands share: loading the config and reporting errors."""

from __future__ import annotations

import re
import sys

from nbterm.config import ConfigError, ConfigNotFoundError, LoadedConfig, load_config
from nbterm.locations import Paths, UnsafeDirectoryError, resolve_paths
from nbterm.safe_text import shown_lines

EXIT_FAILURE = 1
EXIT_CONFIG = 2


class CliError(Exception):
    """A failure the user can act on: printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"nbterm: {shown_lines(message)}", file=sys.stderr)
    return code


def load(config_file: str | None) -> tuple[LoadedConfig, Paths]:
    """The validated config (``--config``, else the default) and the paths in use; a config
    problem exits with code 2."""
    paths = resolve_paths(config_file)
    try:
        return load_config(paths.config_file), paths
    except ConfigNotFoundError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    except ConfigError as exc:
        raise CliError(f"invalid config\n{exc}", EXIT_CONFIG) from None
    except UnsafeDirectoryError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None


def age_seconds(text: str | None, what: str) -> float:
    """``30m``, ``12h``, ``2d``, ``1.5h``: seconds (``what`` names the option in the error)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([mhd])", (text or "").strip())
    if match is None:
        raise CliError(f"{what}: for example 3h, 90m or 1d")
    return float(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]
