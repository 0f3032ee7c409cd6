"""The invariants every fault test states, checked on the local folder.

After the next successful cycle:
1. every complete remote notebook is home, byte-identical;
2. no local file vanished;
3. every local edit survives, in the folder or in its backups.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from nbterm.presenters import Printer
from nbterm.services.sync.promote import BACKUP_DIR
from tests.harness.sync import Recorder


def files_under(folder: Path) -> dict[str, bytes]:
    """Every regular file below ``folder`` (backups included), by relative path."""
    found: dict[str, bytes] = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(folder))] = path.read_bytes()
    return found


def stray_temp_files(folder: Path) -> list[str]:
    return sorted(
        rel for rel in files_under(folder) if rel.endswith((".nbterm-tmp", ".nbterm-old"))
    )


def check_home(
    local: Path,
    *,
    remote: Mapping[str, bytes],
    before: Iterable[str] = (),
    edits: Iterable[bytes] = (),
) -> None:
    found = files_under(local)
    stale = sorted(rel for rel, data in remote.items() if found.get(rel) != data)
    assert not stale, f"{len(stale)} remote notebook(s) not home byte-identical: {stale[:5]}"
    vanished = sorted(rel for rel in before if rel not in found)
    assert not vanished, f"local files vanished: {vanished[:5]}"
    contents = set(found.values())
    lost = [edit[:60] for edit in edits if edit not in contents]
    assert not lost, f"{len(lost)} local edit(s) lost (not in the folder or {BACKUP_DIR}): {lost}"


def said(recorder: Recorder) -> str:
    """Everything the recorded events would print, as the CLI prints them."""
    printer = Printer()
    return "\n".join(filter(None, (printer.line(event) for event in recorder.events)))
