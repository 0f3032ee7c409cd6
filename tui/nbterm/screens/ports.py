"""A host's ports: choose one to open, copy or close, and add one for the session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from nbterm.widgets.plain import marked, plain


@dataclass(frozen=True)
class PortChoice:
    key: str
    """What the caller knows it by (a forward's name, or ``jupyter``)."""
    label: str
    url: str


class ChoosePortScreen(ModalScreen[str | None]):
    """One of a host's ports, by its key; Escape chooses none."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="ports.cancel"),
        Binding("q", "cancel", "Cancel", id="ports.cancel_q", show=False),
    ]

    def __init__(self, title: str, choices: Sequence[PortChoice]) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.choices = tuple(choices)

    def compose(self) -> ComposeResult:
        width = max(len(choice.label) for choice in self.choices)
        with Vertical(classes="dialog wide"):
            yield Static(marked("[b]$title[/b]", title=self.title_text), classes="dialog-title")
            yield OptionList(
                *(
                    Option(plain(f"{choice.label:<{width}}  {choice.url}"), id=str(index))
                    for index, choice in enumerate(self.choices)
                ),
                id="port-options",
            )
            yield Static("Enter chooses · Escape cancels")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[int(event.option_id or 0)].key)

    def action_cancel(self) -> None:
        self.dismiss(None)


def parse_ports(text: str) -> tuple[int, int | None] | str:
    """``6006`` or ``6006 16006`` (remote, then local): the ports, or what is wrong."""
    words = text.replace(":", " ").split()
    if not 1 <= len(words) <= 2 or not all(word.isdigit() for word in words):
        return "type the remote port, and a local port after it if you want one"
    ports = [int(word) for word in words]
    if not all(1 <= port <= 65535 for port in ports):
        return "a port is between 1 and 65535"
    return ports[0], ports[1] if len(ports) == 2 else None


class AddPortScreen(ModalScreen[tuple[int, int | None] | None]):
    """The remote port to forward for this session (and the local one, if wanted)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="add_port.cancel")]

    def __init__(self, host: str) -> None:
        super().__init__(classes="dialog-screen")
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(marked("[b]Forward a port of $host[/b]", host=self.host),
                         classes="dialog-title")  # fmt: skip
            yield Static(
                "The remote port (on its 127.0.0.1), and a local port after it if you want one "
                "(default: the same, or the next free one). For this session only: it closes "
                "with the host's tunnel (x closes it before)."
            )
            yield Input(placeholder="6006   or   6006 16006", id="add-port")
            yield Static("", id="add-port-problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.dismiss(None)
            return
        parsed = parse_ports(event.value)
        if isinstance(parsed, str):
            self.query_one("#add-port-problem", Static).update(plain(parsed))
            return
        self.dismiss(parsed)

    def action_cancel(self) -> None:
        self.dismiss(None)
