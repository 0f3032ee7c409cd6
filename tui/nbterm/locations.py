"""Where nbterm reads and writes its files.

The user's config comes from ``--config``, then ``$NBTERM_CONFIG``, then the platform's config
directory (``~/.config/nbterm/config.toml`` on Linux, ``~/Library/Application Support/nbterm/
config.toml`` on macOS: a path with a space, which every consumer must get quoted). nbterm's own
files live in a state directory
(known hosts, the generated ssh config, state) and a runtime directory (ssh control sockets), both
overridable for tests and unusual set-ups with ``$NBTERM_STATE_DIR`` and ``$NBTERM_RUNTIME_DIR``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "nbterm"
CONFIG_ENV = "NBTERM_CONFIG"
STATE_ENV = "NBTERM_STATE_DIR"
RUNTIME_ENV = "NBTERM_RUNTIME_DIR"


@dataclass(frozen=True)
class Paths:
    """Every path nbterm uses, resolved once at start-up."""

    config_file: Path
    state_dir: Path
    runtime_dir: Path

    @property
    def known_hosts(self) -> Path:
        """nbterm's own known-hosts file (OpenSSH format), read by asyncssh and OpenSSH."""
        return self.state_dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        """The OpenSSH client config nbterm generates from the TOML file."""
        return self.state_dir / "ssh_config"

    @property
    def state_file(self) -> Path:
        """What nbterm remembers between runs (instance ids, addresses)."""
        return self.state_dir / "state.toml"

    @property
    def control_dir(self) -> Path:
        """OpenSSH ControlMaster sockets (kept short: socket paths have a length limit)."""
        return self.runtime_dir / "cm"


def tildify(path: str | os.PathLike[str]) -> str:
    """``/home/ana/work/nb`` -> ``~/work/nb``: shorter on screen, no home path in screenshots."""
    text = os.path.expanduser(os.fspath(path))
    home = os.path.expanduser("~")
    if home != "/" and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def config_file(override: str | os.PathLike[str] | None = None) -> Path:
    """The config file in use: ``override``, then ``$NBTERM_CONFIG``, then the platform default."""
    if override:
        return Path(override).expanduser()
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return default_config_file()


def _runtime_dir() -> Path:
    from_env = os.environ.get(RUNTIME_ENV)
    if from_env:
        return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / APP_NAME
    # No per-user runtime directory: a private one in /tmp, checked by ensure_private_dir().
    return Path("/tmp") / f"{APP_NAME}-{os.getuid()}"  # noqa: S108


def state_dir() -> Path:
    """nbterm's state folder: ``$NBTERM_STATE_DIR``, else the platform's place."""
    state = os.environ.get(STATE_ENV)
    return Path(state).expanduser() if state else Path(platformdirs.user_state_dir(APP_NAME))


def own_key_file() -> Path:
    """nbterm's own SSH key for the instances it launches without a configured key pair."""
    return state_dir() / "keys" / "nbterm_ed25519"


def resolve_paths(config_override: str | os.PathLike[str] | None = None) -> Paths:
    return Paths(
        config_file=config_file(config_override),
        state_dir=state_dir(),
        runtime_dir=_runtime_dir(),
    )


def ensure_private_tree(root: Path, path: Path) -> Path:
    """:func:`ensure_private_dir` for ``root`` and every folder from it down to ``path``: a
    runtime folder in a shared ``/tmp`` that another user made (or a symlink there) is refused,
    not only the leaf."""
    ensure_private_dir(root)
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        ensure_private_dir(current)
    return path


class UnsafeDirectoryError(Exception):
    """A directory nbterm must own privately is owned by someone else."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make sure it is ours and mode 0700.

    A directory that already exists but belongs to another user is refused: in a shared
    ``/tmp`` that would let them read our control sockets.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectoryError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeDirectoryError(
            f"{path} belongs to uid {info.st_uid}, not to you: refusing to use it"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path
