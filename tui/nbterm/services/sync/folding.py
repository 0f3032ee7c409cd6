"""A folder's rules for names, and remote twins kept apart where those rules would merge them.

The remote is Linux: ``A.ipynb`` and ``a.ipynb``, or ``café`` composed and decomposed, are two
files there. macOS's APFS (and HFS+, and a case-insensitive share) folds them into one name, so
a sync that wrote both would merge them: one version silently lost, the other reported twice, and
every later save of one twin taken for a local edit of the other. nbterm probes each folder it
writes (the user's folder and its own staging mirror) when a rule starts, and plans where each
remote file goes:

- in the user's folder (:func:`plan`), a twin is placed under a visible name of its own that
  never changes while it is a twin (``a (twin 3f2a1c).ipynb``: the hash is of its remote
  name), or not placed when even that name is taken; the twin that nbterm placed first keeps
  its own name;
- in the staging mirror (:func:`units`), twins are pulled into separate folders (one rsync
  each), so rsync never writes one twin over the other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Folding:
    """How a folder compares names."""

    case: bool = False
    """``A`` and ``a`` are one name."""
    normalise: bool = False
    """A composed and a decomposed ``é`` are one name."""

    @property
    def folds(self) -> bool:
        return self.case or self.normalise

    def key(self, path: str) -> str:
        """What the folder sees of ``path``: equal keys are one name there. Case is folded
        fully (``casefold``), which can only keep apart more than the folder would."""
        if self.normalise:
            path = unicodedata.normalize("NFC", path)
        return path.casefold() if self.case else path

    def words(self) -> str:
        both = self.case and self.normalise
        kinds = "case and Unicode normalisation" if both else ("case" if self.case else
                                                              "Unicode normalisation")  # fmt: skip
        return f"it ignores {kinds} in names"


EXACT = Folding()


def probe(folder: Path) -> Folding:
    """Ask ``folder`` itself: make a name of nbterm's own there and look it up as another case
    and another normalisation. A folder that cannot be written is taken as exact (nothing will
    be written there anyway: the cycle says why)."""
    tag = uuid.uuid4().hex[:8]
    name = f".nbterm-probe-{tag}-a\u00e9"  # composed é (NFC)
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        return EXACT
    os.close(fd)
    try:
        case = os.path.lexists(os.path.join(folder, f".nbterm-probe-{tag}-A\u00e9"))
        normalise = os.path.lexists(os.path.join(folder, f".nbterm-probe-{tag}-ae\u0301"))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return Folding(case=case, normalise=normalise)


def alternative(name: str) -> str:
    """The stable, visible name of a twin: its own name with ``(twin XXXXXX)`` before the
    extension, from a hash of its remote name (so the two twins of a pair never share one)."""
    tag = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:  # a folder, a dot file, no extension
        stem, ext = name, ""
    else:
        ext = "." + ext
    while len(f"{stem} (twin {tag}){ext}".encode("utf-8", "surrogateescape")) > 255:
        stem = stem[:-1]
    return f"{stem} (twin {tag}){ext}"


@dataclass(frozen=True)
class Twin:
    """A remote file or folder whose name the local folder would merge with another's."""

    path: str
    """The remote path (a file or a folder)."""
    other: str
    """The remote path it would be merged with (the one that keeps the name)."""
    place: str | None
    """Where it goes locally, or None: not placed (its alternative name is taken too)."""


@dataclass
class Plan:
    """Where each remote file goes in a folding local folder."""

    places: dict[str, str | None] = field(default_factory=dict)
    """remote path -> local path, for each file whose local path is not its remote one (None:
    not placed)."""
    twins: list[Twin] = field(default_factory=list)

    def place(self, path: str) -> str | None:
        return self.places.get(path, path)


def _tree(paths: Iterable[str]) -> dict[str, list[str]]:
    """remote folder ("" for the top) -> the names in it (files and folders)."""
    children: dict[str, set[str]] = {}
    for path in paths:
        parent = ""
        for part in path.split("/"):
            children.setdefault(parent, set()).add(part)
            parent = f"{parent}/{part}" if parent else part
    return {folder: sorted(names) for folder, names in children.items()}


def plan(paths: Iterable[str], folding: Folding, recorded: Mapping[str, str] | None = None) -> Plan:
    """Where each of ``paths`` (remote files) goes in a folder with ``folding``.

    ``recorded``: remote path -> local path where nbterm placed each file before. Of names that
    fold together, the one nbterm placed under its own name before keeps it (else the first in
    sorted order), and a file placed before under an alternative name stays there."""
    result = Plan()
    if not folding.folds:
        return result
    paths = list(paths)
    recorded = recorded or {}
    own = {p for p, local in recorded.items() if local == p}
    own_prefixes = {path.rsplit("/", depth)[0] for path in own
                    for depth in range(path.count("/") + 1)}  # fmt: skip
    kept: dict[str, str] = {}  # remote file or folder -> its recorded alternative name
    for path, local in recorded.items():
        remote_parts, local_parts = path.split("/"), local.split("/")
        if local != path and len(remote_parts) == len(local_parts):
            for depth, (remote, there) in enumerate(zip(remote_parts, local_parts, strict=True)):
                if remote != there:
                    kept.setdefault("/".join(remote_parts[: depth + 1]), there)
    tree = _tree(paths)
    local_of: dict[str, str | None] = {"": ""}
    for folder in sorted(tree, key=lambda f: (f.count("/") if f else -1, f)):
        where = local_of.get(folder)
        names = tree[folder]
        prefix = f"{folder}/" if folder else ""
        if where is None:  # inside a twin that is not placed
            for name in names:
                local_of[prefix + name] = None
            continue
        local_prefix = f"{where}/" if where else ""
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(folding.key(name), []).append(name)
        claimed = set(groups)
        for group in groups.values():
            free = [n for n in group if prefix + n not in kept]
            keeper = next((n for n in free if prefix + n in own_prefixes), free[0] if free else "")
            for name in group:
                remote = prefix + name
                if name == keeper:
                    local_of[remote] = local_prefix + name
                    continue
                alt = kept.get(remote) or alternative(name)
                other = prefix + keeper if keeper else None
                if folding.key(alt) in claimed:
                    local_of[remote] = None
                    if other is not None:
                        result.twins.append(Twin(remote, other, None))
                    continue
                claimed.add(folding.key(alt))
                local_of[remote] = local_prefix + alt
                if other is not None:
                    result.twins.append(Twin(remote, other, local_prefix + alt))
    for path in paths:
        placed = local_of.get(path, path)
        if placed != path:
            result.places[path] = placed
    return result


def units(paths: Iterable[str], folding: Folding) -> dict[str, str]:
    """For a staging mirror with ``folding``: remote paths (files or folders) that rsync must
    pull into a folder of their own, each with the name of that folder.

    Names that fold together in a remote folder are numbered in sorted order; a path's folder is
    the list of its numbers at every level where it has such twins, trailing zeros dropped: the
    first twin of every pair stays in the main mirror ("" is not returned), and no two paths in
    one folder ever fold together (where two paths first differ, they are twins with different
    numbers). A unit names the shortest prefix that leaves its parent's folder."""
    result: dict[str, str] = {}
    if not folding.folds:
        return result
    tree = _tree(list(paths))
    numbers: dict[str, tuple[int, ...]] = {"": ()}
    for folder in sorted(tree, key=lambda f: (f.count("/") if f else -1, f)):
        parent = numbers[folder]
        prefix = f"{folder}/" if folder else ""
        groups: dict[str, list[str]] = {}
        for name in tree[folder]:
            groups.setdefault(folding.key(name), []).append(name)
        for group in groups.values():
            for index, name in enumerate(group):
                numbers[prefix + name] = (*parent, index) if len(group) > 1 else parent
                own, parents = _folder(numbers[prefix + name]), _folder(parent)
                if own != parents:
                    result[prefix + name] = own
    return result


def _folder(numbers: tuple[int, ...]) -> str:
    while numbers and numbers[-1] == 0:
        numbers = numbers[:-1]
    return ".".join(map(str, numbers))
