"""The annotated starter config, for ``nbterm config init`` and the first-run screen."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from nbterm.files import write_private
from nbterm.locations import ensure_private_dir


class ConfigExistsError(Exception):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} already exists; nothing written (use --force to replace it, "
            "the old file is kept as .bak)"
        )


def starter_text() -> str:
    return resources.files("nbterm.config").joinpath("starter.toml").read_text()


def write_starter(path: Path, *, force: bool = False, extra: str = "") -> Path | None:
    """Write the starter config (plus ``extra`` TOML) to ``path``, mode 0600.

    Returns the backup of the file it replaced, if any. Never overwrites without ``force``.
    """
    backup = None
    if path.exists():
        if not force:
            raise ConfigExistsError(path)
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    if not path.parent.exists():
        ensure_private_dir(path.parent)
    text = starter_text()
    if extra:
        text += "\n" + extra
    write_private(path, text, own_folder=False)
    return backup
