"""Text that came from outside (a remote's file names, a process's output) made safe to show.

A remote is untrusted: a file name may hold terminal escape sequences, newlines or bytes that
are not UTF-8. ``shown()`` turns any such string into one printable line: C0 and C1 controls
and DEL become visible escapes (``\\e``, ``\\n``, ``\\x9b``) and bytes that were not UTF-8 (kept
by Python as lone surrogates, see ``os.fsdecode``) become ``\\xNN``. Names stay names: the
escaped form is for people, never for paths.
"""

from __future__ import annotations

import re

_NAMED = {"\x1b": "\\e", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` as one line that cannot steer a terminal."""
    return _UNSAFE.sub(_escape, text)


def shown_lines(text: str) -> str:
    """Like :func:`shown`, but keeps line breaks (for multi-line process output)."""
    return "\n".join(shown(line) for line in text.splitlines())
