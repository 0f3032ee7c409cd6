"""Parse rsync's output: itemized lines (``--out-format='%i %l %n'``) and ``--info=progress2``.

Itemized lines end with ``\\n``; progress updates are separated by ``\\r``, so the stream is split
on both. rsync escapes unprintable bytes in names as ``\\#ooo`` (octal); they are decoded back
to the very bytes, and bytes that are not UTF-8 are kept as Python keeps file names
(``surrogateescape``), so such a name can still be opened. Show names with ``safe_text.shown``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPE = re.compile(rb"\\#([0-7]{3})")
_ITEM = re.compile(r"^([<>ch.*][fdLDS][^ ]*|\*deleting)\s+(\d+) (.*)$", re.DOTALL)
_PROGRESS = re.compile(r"^\s*(\d+)\s+(\d+)%\s+(\S+/s)\s+\d+:\d+:\d+")

EXIT_MESSAGES = {
    1: "rsync reported a syntax or usage error (a bug in nbterm: please report it)",
    2: "the remote rsync is not compatible with this one (protocol mismatch)",
    3: "a path could not be used: check that the remote directory exists",
    5: "the rsync protocol could not start: is rsync installed on the remote?",
    10: "a socket error stopped rsync; the network dropped?",
    11: "a file could not be written locally: is the disk full or the folder read-only?",
    12: "the connection broke mid-transfer (rsync protocol stream error)",
    20: "rsync was interrupted",
    23: "some files were not transferred (see the messages above); the rest arrived",
    24: "some files vanished on the remote while being read (normal while saving); "
    "they come next cycle",
    30: "no data moved within the I/O timeout: the link is stalled",
    35: "rsync timed out waiting for the remote",
    127: "rsync is not installed on the remote (or not on its PATH)",
    255: "ssh failed: the host is unreachable or refused the login (see the message above)",
}


SSH_COULD_NOT_CONNECT = re.compile(
    r"^ssh: |Permission denied|Host key verification failed|Could not resolve|"
    r"Connection (?:refused|timed out)|No route to host|Network is unreachable|"
    r"kex_exchange_identification|Connection closed by",
    re.MULTILINE,
)


def is_mid_transfer_drop(code: int, stderr: str) -> bool:
    """The stream closed under rsync without any complaint of ssh's about reaching the host:
    the connection it was using ended, which is what a dead ControlMaster looks like. Which of
    the two sees it first is a race: ssh (exit 255) or rsync's own reader (exit 12, "protocol
    data stream"), so both codes are the one drop."""
    return (
        code in (12, 255)
        and "connection unexpectedly closed" in stderr
        and not SSH_COULD_NOT_CONNECT.search(stderr)
    )


def exit_message(code: int, stderr: str = "") -> str:
    if is_mid_transfer_drop(code, stderr):
        why = (
            "the SSH connection closed mid-transfer (nbterm's shared connection, its "
            "ControlMaster, ended or the link dropped)"
            if code == 255  # ssh's own end
            else "the connection closed mid-transfer (the shared SSH connection ended, the "
            "link dropped, or the remote rsync was ended)"  # rsync's reader saw it first
        )
        return f"{why}; a new one is opened on the next try"
    return EXIT_MESSAGES.get(code, f"rsync failed with exit code {code}")


def unescape(raw: bytes) -> str:
    """Undo rsync's ``\\#ooo`` escapes, then decode as a file name (``os.fsdecode``'s way)."""
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), raw).decode(
        "utf-8", "surrogateescape"
    )


@dataclass(frozen=True)
class Item:
    """One itemized line."""

    code: str
    """rsync's change code, for example ``>f+++++++++`` or ``*deleting``."""
    size: int
    path: str

    @property
    def is_file(self) -> bool:
        return len(self.code) > 1 and self.code[1] == "f"

    @property
    def received(self) -> bool:
        return self.code.startswith(">f")

    @property
    def new(self) -> bool:
        return self.received and "+++++" in self.code

    @property
    def deleted(self) -> bool:
        return self.code == "*deleting"


@dataclass(frozen=True)
class Skipped:
    """A file rsync left out (``--info=skip1``): larger than ``--max-size``."""

    path: str
    why: str


_SKIPPED = re.compile(r"^(.*) is over max-size$", re.DOTALL)


@dataclass(frozen=True)
class ProgressLine:
    bytes: int
    percent: int
    rate: str


def parse_line(raw: bytes) -> Item | ProgressLine | Skipped | None:
    """Parse one line or ``\\r``-separated segment of rsync's stdout."""
    text = unescape(raw.rstrip(b"\n"))
    match = _PROGRESS.match(text)
    if match:
        return ProgressLine(int(match.group(1)), int(match.group(2)), match.group(3))
    match = _ITEM.match(text)
    if match:
        return Item(match.group(1), int(match.group(2)), match.group(3))
    skipped = _SKIPPED.match(text)  # (last: a name cannot make an item line look skipped)
    if skipped:
        return Skipped(skipped.group(1), "over max-size")
    return None


def split_segments(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split on ``\\n`` and ``\\r``; return complete segments and the unfinished rest."""
    parts = re.split(rb"[\r\n]", buffer)
    return [part for part in parts[:-1] if part.strip()], parts[-1]


def parse_output(data: bytes) -> list[Item | ProgressLine | Skipped]:
    segments, rest = split_segments(data)
    if rest.strip():
        segments.append(rest)
    parsed = (parse_line(segment) for segment in segments)
    return [item for item in parsed if item is not None]
