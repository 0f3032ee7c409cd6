"""The user's TOML config: schema, loader with precise errors, starter file, ssh import."""

from nbterm.config.errors import ConfigError, Problem
from nbterm.config.loader import ConfigNotFoundError, load_config, parse_config
from nbterm.config.model import Forward, Host, JupyterSettings, LoadedConfig

__all__ = [
    "ConfigError",
    "ConfigNotFoundError",
    "Forward",
    "Host",
    "JupyterSettings",
    "LoadedConfig",
    "Problem",
    "load_config",
    "parse_config",
]
