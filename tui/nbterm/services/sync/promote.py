"""Move received files from nbterm's staging mirror into the user's folder, losing nothing.

rsync pulls into a private staging mirror (so rsync's own delta transfer keeps working and the
user's folder never sees a partial file). A received file then replaces the local one only if it
is valid, and a local file that differs from what nbterm last pulled (the user edited it) is first
copied to a dated backup folder. Each replacement is a rename of a fully written, fsynced file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbterm.services.files import write_private
from nbterm.services.sync.notebooks import problem_with

BACKUP_DIR = ".nbterm-backups"


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


class Manifest:
    """What nbterm last put in the local folder: relative path -> sha256."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text())
            self.entries: dict[str, str] = dict(data.get("files", {}))
            self.rejected: set[str] = set(data.get("rejected", []))
        except (OSError, ValueError, AttributeError):
            self.entries, self.rejected = {}, set()
        self._saved = self._snapshot()

    def _snapshot(self) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        return tuple(sorted(self.entries.items())), tuple(sorted(self.rejected))

    def save(self) -> None:
        """Write the manifest if it changed (an idle cycle writes nothing)."""
        snapshot = self._snapshot()
        if snapshot == self._saved:
            return
        payload = {"files": self.entries, "rejected": sorted(self.rejected)}
        write_private(self.path, json.dumps(payload, indent=0, sort_keys=True))
        self._saved = snapshot


@dataclass
class PromoteResult:
    placed: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    """(path, backup path)"""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason)"""


def _safe_relative(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def _place(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` atomically (temp file in the same folder, fsync, rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".nbterm-tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        stat = source.stat()
        os.utime(tmp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def promote(
    staging: Path, local: Path, paths: list[str], manifest: Manifest, *, stamp: str | None = None
) -> PromoteResult:
    """Put each of ``paths`` (relative, received into ``staging``) into ``local``."""
    result = PromoteResult()
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    for rel in dict.fromkeys(paths):
        source, target = staging / rel, local / rel
        if not _safe_relative(rel) or not source.is_file():
            continue
        problem = problem_with(source)
        if problem is not None:
            manifest.rejected.add(rel)
            result.rejected.append((rel, problem))
            continue
        manifest.rejected.discard(rel)
        new_hash = digest(source)
        if target.is_file():
            local_hash = digest(target)
            if local_hash == new_hash:
                manifest.entries[rel] = new_hash
                continue
            if manifest.entries.get(rel) != local_hash:
                backup = local / BACKUP_DIR / stamp / rel
                backup.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(target, backup)
                result.conflicts.append((rel, str(backup)))
        _place(source, target)
        manifest.entries[rel] = new_hash
        result.placed.append(rel)
    return result
