"""Trust a new host key? The fingerprint, and y / n."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from nbterm.services.remote.host_keys import HostKeyQuestion
from nbterm.widgets.plain import marked


class HostKeyScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Trust", id="host_key.trust"),
        Binding("n,escape,q", "answer(False)", "Refuse", id="host_key.refuse"),
    ]

    def __init__(self, question: HostKeyQuestion) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question

    def compose(self) -> ComposeResult:
        q = self.question
        with Vertical(classes="dialog"):
            yield Static(marked("[b]New host key for $host[/b]", host=q.host),
                         classes="dialog-title")  # fmt: skip
            yield Static(
                marked(
                    "$where presents\n\n  [b]$key[/b]\n\n"
                    "nbterm has not seen this machine before. Compare the fingerprint with the "
                    "one its owner or console shows. If you trust it, it is stored under "
                    "[b]$alias[/b] and checked strictly from now on.",
                    where=f"{q.address}:{q.port}",
                    key=f"{q.key_type} {q.sha256}",
                    alias=q.alias,
                )
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Trust (y)", variant="warning", id="trust")
                yield Button("Refuse (n)", variant="primary", id="refuse")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust")

    def action_answer(self, trust: bool) -> None:
        self.dismiss(trust)
