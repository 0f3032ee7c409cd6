"""Launch an instance: pick a template (type, market, price shown), spot or on-demand."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from nbterm.config import LoadedConfig
from nbterm.widgets.plain import plain


@dataclass(frozen=True)
class LaunchChoice:
    template: str
    host: str
    spot: bool
    name: str | None = None
    """The instance's Name tag (None: the host's instance name, or the host's name)."""


class LaunchScreen(ModalScreen[LaunchChoice | None]):
    BINDINGS = [
        Binding("m", "toggle_market", "Spot / on-demand", id="launch.market"),
        Binding("escape", "cancel", "Cancel", id="launch.cancel"),
        Binding("q", "cancel", "Cancel", id="launch.cancel_q", show=False),
    ]

    def __init__(self, config: LoadedConfig) -> None:
        super().__init__(classes="dialog-screen")
        self.config = config
        self.choices = [
            (name, host.name)
            for name in config.templates
            for host in config.hosts.values()
            if host.template == name
        ]
        self.spot = {name: template.spot for name, template in config.templates.items()}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("[b]Launch an instance[/b]", classes="dialog-title")
            if not self.choices:
                yield Static('No host uses a template: add template = "..." to an EC2 host.')
            yield OptionList(*self._options(), id="launch-options")
            yield Input(
                placeholder="Name tag (default: the host's instance name)", id="launch-name"
            )
            yield Static(
                "Enter launches · m switches spot / on-demand · Tab: name it · Escape cancels"
            )

    def _options(self) -> list[Option]:
        options = []
        for index, (name, host) in enumerate(self.choices):
            template = self.config.templates[name]
            spot = self.spot[name]
            price = (
                f"spot, up to ${template.max_price:.2f}/h" if spot and template.max_price
                else "spot, up to the on-demand price" if spot else "on-demand"
            )  # fmt: skip
            text = f"{name:<10} {template.instance_type:<12} {price:<32} for host {host}"
            options.append(Option(plain(text), id=str(index)))
        return options

    def action_toggle_market(self) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None or not self.choices:
            return
        name = self.choices[index][0]
        self.spot[name] = not self.spot[name]
        options.clear_options()
        options.add_options(self._options())
        options.highlighted = index

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._choose(int(event.option_id or 0))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        index = self.query_one(OptionList).highlighted
        if index is not None and self.choices:
            self._choose(index)

    def _choose(self, index: int) -> None:
        template, host = self.choices[index]
        label = self.query_one(Input).value.strip() or None
        self.dismiss(LaunchChoice(template, host, self.spot[template], label))

    def action_cancel(self) -> None:
        self.dismiss(None)
