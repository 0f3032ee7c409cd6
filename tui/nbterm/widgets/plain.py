"""Text on screen is markup only when it is our own literal: the one place that builds what
Textual and Rich draw from strings that are not.

A remote's words (a Jupyter that failed while printing ``[/]``, a ``[link=...]`` or
``[@click=app.quit]`` in its output) and error texts must be drawn as they are: parsed as markup
they crash the cockpit, run actions or turn into links. Toasts are plain by construction
(``NbtermApp.notify`` ignores ``markup``); a ``Static`` gets a literal, ``marked()`` or
``plain()``; table cells come from ``widgets/cells.py`` as ``plain_cell()``.
``tests/hostile/test_markup.py`` holds this over the source.
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from nbterm.safe_text import shown, shown_lines


def plain(text: str) -> Content:
    """Any text, drawn exactly as it is (controls made visible, no markup)."""
    return Content(shown_lines(text))


def marked(template: str, **values: object) -> Content:
    """Our literal markup ``template`` with ``$name`` values inserted as plain text:
    ``marked("[b]$host[/b]", host=name)``."""
    return Content.from_markup(template, **{k: shown(str(v)) for k, v in values.items()})


def plain_cell(text: str) -> Text:
    """A table cell: DataTable parses a ``str`` as Rich markup, never a ``Text``."""
    return Text(shown(text), end="")
