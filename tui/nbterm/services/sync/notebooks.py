"""Is a received file safe to put in place of the local copy?

Jupyter saves notebooks in place, so a pull can catch one half-written. A notebook must be whole
JSON with the notebook structure before it may replace a good local copy.
"""

from __future__ import annotations

import json
from pathlib import Path


def problem_with(path: Path) -> str | None:
    """Why ``path`` must not replace the local copy, or None if it may."""
    if path.suffix != ".ipynb":
        return None
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not complete JSON ({exc.__class__.__name__}: {exc}); probably caught mid-save"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if not isinstance(data, dict):
        return "not a notebook: the JSON is not an object"
    nbformat = data.get("nbformat")
    if not isinstance(nbformat, int):
        return "not a notebook: no nbformat version"
    if nbformat >= 4 and not isinstance(data.get("cells"), list):
        return "not a notebook: no list of cells"
    if nbformat < 4 and not isinstance(data.get("worksheets"), list):
        return "not a notebook: no worksheets"
    return None
