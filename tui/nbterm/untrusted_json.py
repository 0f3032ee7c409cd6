"""JSON that came from outside (a remote's runtime file, the guard's state, an IMDS notice, an
HTTP answer, a file on disk a person may have edited), read with limits.

``load()`` never raises: too large, nested too deep (a depth bomb makes ``json.loads`` raise
``RecursionError``, which ends whatever task called it), or not JSON at all, the answer is an
:class:`Unusable` that says why in words ("not usable: ..."). Bytes that are not UTF-8 are kept
as lone surrogates (``surrogateescape``), so a name stays a name and ``safe_text.shown`` can
write it as ``\\xNN``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

SIZE_LIMIT = 1 << 20
DEPTH_LIMIT = 64
"""No JSON nbterm reads nests deeper than a few levels; a notebook's outputs reach perhaps 10."""

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def size_words(limit: int) -> str:
    """1048576 -> "1 MiB", 65536 -> "64 KiB"."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= scale and limit % scale == 0:
            return f"{limit // scale} {unit}"
    return f"{limit} bytes"


@dataclass(frozen=True)
class Unusable:
    """Why a piece of JSON was not used."""

    what: str
    why: str

    def __str__(self) -> str:
        return f"{self.what} is not usable: {self.why}"


def _deeper_than(data: bytes, limit: int) -> bool:
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load(
    data: str | bytes, what: str, *, limit: int = SIZE_LIMIT, depth: int = DEPTH_LIMIT
) -> object:
    """The value ``data`` holds, or an :class:`Unusable` (``what`` names it in the words)."""
    raw = data.encode("utf-8", errors="surrogateescape") if isinstance(data, str) else data
    if len(raw) > limit:
        return Unusable(what, f"it is over {size_words(limit)}")
    if _deeper_than(raw, depth):
        return Unusable(what, f"it nests deeper than {depth} levels")
    try:
        return json.loads(raw.decode("utf-8", errors="surrogateescape"))
    except RecursionError:  # (the scan above makes this unreachable; kept as the last line)
        return Unusable(what, f"it nests deeper than {depth} levels")
    except ValueError as exc:
        return Unusable(what, f"it is not JSON ({str(exc)[:120]})")


def load_object(
    data: str | bytes, what: str, *, limit: int = SIZE_LIMIT, depth: int = DEPTH_LIMIT
) -> dict[str, object] | Unusable:
    """Like :func:`load`, for JSON that must be an object."""
    value = load(data, what, limit=limit, depth=depth)
    if isinstance(value, (Unusable, dict)):
        return value
    return Unusable(what, f"it is a JSON {type(value).__name__}, not an object")
