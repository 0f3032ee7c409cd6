"""nbterm's record of one rule's local folder: what it placed there, from which staged file.

For every file nbterm put in the user's folder the manifest keeps its sha256, the size and
mtime of the staged copy it came from, and the size and mtime the local copy had right after it
was placed. A cycle compares those numbers with the two folders: when both match, the file is
home and nothing is read; when they differ, hashes decide. The manifest also remembers which
staged versions were refused (a notebook caught mid-save) and which placed files still wait for
a git commit.

The file is nbterm's own (0600, written atomically). One that cannot be read, or that has the
wrong shape, is not trusted at all: the manifest starts empty and says why (``damaged``); the
next cycle rebuilds it from the folders, backing up any local file it cannot vouch for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbterm.files import write_private
from nbterm.untrusted_json import Unusable, load

VERSION = 2
MANIFEST_LIMIT = 256 << 20
"""Far more than any folder of notebooks needs (an entry is about 200 bytes)."""

Stat = tuple[int, int]
"""(size, mtime in nanoseconds)"""


@dataclass(frozen=True)
class Record:
    sha: str
    staged: Stat | None
    """The staged file this copy came from; None in a record from before version 2."""
    local: Stat | None
    """The local copy right after nbterm placed it."""
    place: str | None = None
    """Where it was placed, when not at its own name (a twin in a folder that folds names:
    :mod:`folding`)."""

    def where(self, rel: str) -> str:
        return self.place or rel


@dataclass
class ManifestData:
    files: dict[str, Record] = field(default_factory=dict)
    rejected: dict[str, Stat] = field(default_factory=dict)
    """Staged versions that failed the notebook check, so each is judged (and said) once."""
    uncommitted: set[str] = field(default_factory=set)
    """Placed files that no git commit has taken yet (git_commit rules)."""


class ShapeError(ValueError):
    pass


def _stat(value: Any) -> Stat | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
    ):
        return (value[0], value[1])
    raise ShapeError(f"bad size and time {value!r}")


def _place(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value and not value.startswith("/")):
        return value
    raise ShapeError(f"bad place {value!r}")


def _sha(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value
    raise ShapeError("bad sha256")


def _parse(data: Any) -> ManifestData:
    if not isinstance(data, dict):
        raise ShapeError("not a JSON object")
    files, rejected, uncommitted = data.get("files", {}), data.get("rejected", []), None
    if not isinstance(files, dict):
        raise ShapeError("'files' is not an object")
    parsed = ManifestData()
    if data.get("version") == VERSION:
        for rel, entry in files.items():
            if not isinstance(entry, dict):
                raise ShapeError(f"entry for {rel!r} is not an object")
            record = Record(_sha(entry.get("sha")), _stat(entry.get("staged")),
                            _stat(entry.get("local")), _place(entry.get("place")))  # fmt: skip
            parsed.files[rel] = record
        if not isinstance(rejected, dict):
            raise ShapeError("'rejected' is not an object")
        for rel, staged in rejected.items():
            stat = _stat(staged)
            if stat is not None:
                parsed.rejected[rel] = stat
        uncommitted = data.get("uncommitted", [])
    else:  # version 1: {"files": {path: sha256}, "rejected": [path, ...]}
        for rel, sha in files.items():
            parsed.files[rel] = Record(_sha(sha), None, None)
        if not isinstance(rejected, list):
            raise ShapeError("'rejected' is not a list")
    if uncommitted is not None:
        if not isinstance(uncommitted, list) or not all(isinstance(p, str) for p in uncommitted):
            raise ShapeError("'uncommitted' is not a list of paths")
        parsed.uncommitted = set(uncommitted)
    return parsed


class Manifest:
    def __init__(self, path: Path, *, expected: bool = False) -> None:
        """``expected``: the manifest should exist (nbterm has synced this rule before), so a
        missing one was lost, not new."""
        self.path = path
        self.damaged: str | None = None
        """Why the file on disk could not be used (None: it could, or there was none)."""
        self.dirty = False
        """Set by whoever changes the data; ``save()`` writes only then."""
        self.on_disk: tuple[int, int, int] | None = None
        """(inode, size, mtime) of the file as last read or written: ``stale()`` compares."""
        try:
            raw = path.read_bytes()
            self.on_disk = _identity(path)
        except FileNotFoundError:
            self.data = ManifestData()
            if expected:
                self.damaged = "it was missing"
        except OSError as exc:
            self.data, self.damaged = ManifestData(), exc.strerror or str(exc)
        else:
            loaded = load(raw, "the manifest", limit=MANIFEST_LIMIT)
            try:
                if isinstance(loaded, Unusable):
                    raise ValueError(loaded.why)
                self.data = _parse(loaded)
            except ValueError as exc:
                self.data, self.damaged = ManifestData(), str(exc)[:200]

    def stale(self) -> bool:
        """True if the file changed on disk since this object read or wrote it (another nbterm
        process, or a person): read it again before trusting it."""
        try:
            return _identity(self.path) != self.on_disk
        except OSError:
            return self.on_disk is not None

    @property
    def files(self) -> dict[str, Record]:
        return self.data.files

    @property
    def rejected(self) -> dict[str, Stat]:
        return self.data.rejected

    @property
    def uncommitted(self) -> set[str]:
        return self.data.uncommitted

    def _serialise(self) -> str:
        files: dict[str, dict[str, Any]] = {}
        for rel, r in sorted(self.data.files.items()):
            entry: dict[str, Any] = {"sha": r.sha, "staged": r.staged and list(r.staged),
                                     "local": r.local and list(r.local)}  # fmt: skip
            if r.place is not None:
                entry["place"] = r.place
            files[rel] = entry
        payload = {
            "version": VERSION,
            "files": files,
            "rejected": {rel: list(stat) for rel, stat in sorted(self.data.rejected.items())},
            "uncommitted": sorted(self.data.uncommitted),
        }
        # ensure_ascii keeps names that are not UTF-8 (lone surrogates) as \udcXX escapes
        return json.dumps(payload, ensure_ascii=True, separators=(",", ":"))

    def save(self) -> None:
        """Write the manifest if it changed (an idle cycle writes nothing)."""
        if not self.dirty and self.damaged is None:
            return
        write_private(self.path, self._serialise())
        self.on_disk = _identity(self.path)
        self.dirty = False
        self.damaged = None


def _identity(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return (info.st_ino, info.st_size, info.st_mtime_ns)
