"""Open Jupyter in the browser without putting its token on a command line.

``webbrowser.open(url)`` starts the browser with the URL, token included, in its argv, which
every local user can read with ``ps``. Like Jupyter itself, nbterm writes a small redirect page
(0600, in its own state folder) that holds the URL and opens that file instead.
"""

from __future__ import annotations

import html
import json
import re
import webbrowser
from pathlib import Path

from nbterm.files import write_private
from nbterm.locations import Paths


def redirect_page(url: str) -> str:
    shown = html.escape(url, quote=True)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0;url={shown}">\n'
        "<title>Opening Jupyter</title></head><body>\n"
        f'<p><a href="{shown}">Open Jupyter</a></p>\n'
        f"<script>window.location.replace({json.dumps(url)});</script>\n"
        "</body></html>\n"
    )


def redirect_file(paths: Paths, host: str, url: str) -> Path:
    """Write the redirect page for ``host`` (0600) and return its path."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", host)
    path = paths.state_dir / "open" / f"{name}.html"
    write_private(path, redirect_page(url))
    return path


def open_private(paths: Paths, host: str, url: str) -> bool:
    """Open ``url`` through a private redirect page; True if a browser was started."""
    return webbrowser.open(redirect_file(paths, host, url).as_uri())
