"""A folder that folds names as macOS's APFS does, for a test: tests/harness/foldfs.py mounted
in a process of its own (ended by its pid, and unmounted, when the test ends).

This kernel mounts neither ext4 ``-O casefold`` nor vfat (FACTS.md), so FUSE stands in; where
FUSE cannot mount (no /dev/fuse, no fusermount3, not root), the test is skipped and says why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

FOLDFS = Path(__file__).with_name("foldfs.py")


def _why_not() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian's fuse3)"
    if os.getuid() != 0:
        return "FUSE mounts here need root"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"mfusepy cannot load libfuse: {exc}"
    return None


@contextlib.contextmanager
def folding_folder(base: Path) -> Iterator[Path]:
    """A mounted folder that ignores case and Unicode normalisation (its files are kept in
    ``base / "backing"``, spelled as they were made)."""
    why = _why_not()
    if why is not None:
        pytest.skip(f"no case-folding folder: {why}")
    backing, mount = base / "backing", base / "folded mount"
    backing.mkdir(parents=True)
    mount.mkdir()
    log = (base / "foldfs.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(FOLDFS), str(backing), str(mount)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mount):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                output = (base / "foldfs.log").read_text(errors="replace")[-2000:]
                pytest.skip(f"no case-folding folder: the FUSE layer did not mount: {output}")
            time.sleep(0.05)
        yield mount
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mount)], check=False,
                       capture_output=True)  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
