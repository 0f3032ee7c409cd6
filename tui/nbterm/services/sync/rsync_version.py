"""Is the local rsync new enough for the flags nbterm gives it?

nbterm uses ``--info=progress2,skip1`` and ``--modify-window=-1`` (nanosecond times), which need
rsync 3.1.3 or newer. macOS ships rsync 2.6.9 or openrsync, which reject them with a usage error
(exit 1) that would otherwise read as a bug in nbterm: the version is checked once, and an old
one is named with the fix.
"""

from __future__ import annotations

import functools
import re
import subprocess

MINIMUM = (3, 1, 3)
_VERSION = re.compile(r"rsync\s+version\s+v?(\d+)\.(\d+)\.(\d+)")


def problem_with_version(first_line: str) -> str | None:
    """Why the rsync that printed ``first_line`` (of ``rsync --version``) will not do, or None."""
    if "openrsync" in first_line:
        found = "openrsync (macOS's own)"
    else:
        match = _VERSION.search(first_line)
        if match is None:
            return None  # an unknown build: let it try, and its errors speak
        version = tuple(int(part) for part in match.groups())
        if version >= MINIMUM:
            return None
        found = "rsync " + ".".join(match.groups())
    wanted = ".".join(str(part) for part in MINIMUM)
    return (
        f"the local rsync is {found}; nbterm needs rsync {wanted} or newer "
        "(on macOS: `brew install rsync`, then make sure Homebrew's rsync comes first on PATH)"
    )


@functools.cache
def local_rsync_problem() -> str | None:
    """Checked once per process."""
    try:
        done = subprocess.run(
            ["rsync", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # not installed: the engine says so when it runs it
    lines = (done.stdout or done.stderr).splitlines()
    return problem_with_version(lines[0] if lines else "")
