"""Confirmations: y / n for the reversible, a typed name for terminate."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from nbterm.widgets.plain import marked, plain


class TypedConfirmScreen(ModalScreen[bool]):
    """Type the exact name to confirm; Escape or an empty Enter cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, title: str, text: str, expected: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.text = text
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(marked("[b]$title[/b]", title=self.title_text), classes="dialog-title")
            yield Static(plain(self.text))
            yield Static(
                marked("Type [b]$name[/b] and press Enter (Escape cancels):", name=self.expected)
            )
            yield Input(placeholder=self.expected, id="typed")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)
        elif not event.value.strip():
            self.dismiss(False)
        else:
            self.notify("that is not the name: nothing was done", severity="warning")
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class YesNoScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="yes_no.yes"),
        Binding("n,escape,q", "answer(False)", "No", id="yes_no.no"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(marked("[b]$title[/b]", title=self.title_text), classes="dialog-title")
            yield Static(plain(self.text))
            yield Static("[b]y[/b] yes   [b]n[/b] no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ShownScreen(ModalScreen[None]):
    """Words, and a line to select by hand (what nbterm could not copy): on one line of its own,
    as wide as the terminal allows. Any of Escape, Enter or q closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="shown.close")]

    def __init__(self, title: str, text: str, line: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.text = text
        self.line = line

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static(marked("[b]$title[/b]", title=self.title_text), classes="dialog-title")
            yield Static(plain(self.text))
            yield Static(plain(self.line), id="shown-line")
            yield Static("[b]Escape[/b] closes")

    def action_close(self) -> None:
        self.dismiss(None)
