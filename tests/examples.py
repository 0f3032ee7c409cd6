"""The example configs in config/, with the identity files they name made real in a test home."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "config").glob("*.toml"))


def provide_identity_files(example: Path) -> None:
    """Create (mode 0600) every ``identity_file`` an example names, under the test HOME."""
    for match in re.finditer(r'^identity_file\s*=\s*"([^"]+)"', example.read_text(), re.M):
        key = Path(os.path.expanduser(match.group(1)))
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        key.chmod(0o600)
