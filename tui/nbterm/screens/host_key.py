"""Trust a new host key? The fingerprint, and y / n."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from nbterm.services.remote.host_keys import HostKeyQuestion


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
            yield Static(f"[b]New host key for {q.host}[/b]", classes="dialog-title")
            yield Static(
                f"{q.address}:{q.port} presents\n\n  [b]{q.key_type} {q.sha256}[/b]\n\n"
                "nbterm has not seen this machine before. Compare the fingerprint with the one "
                "its owner or console shows. If you trust it, it is stored under "
                f"[b]{q.alias}[/b] and checked strictly from now on."
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Trust (y)", variant="warning", id="trust")
                yield Button("Refuse (n)", variant="primary", id="refuse")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "trust")

    def action_answer(self, trust: bool) -> None:
        self.dismiss(trust)
