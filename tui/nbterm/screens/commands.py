"""The command palette (ctrl+p): every action of the cockpit, by the name a user would search."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Provider


class CockpitCommands(Provider):
    """Offers the bindings of the screen and the app, with their descriptions and keys."""

    def _bindings(self) -> list[Binding]:
        screen = self.screen
        found: dict[str, Binding] = {}
        for source in (*screen.BINDINGS, *self.app.BINDINGS):
            if isinstance(source, Binding) and source.description and source.id:
                found.setdefault(source.action, source)
        return list(found.values())

    def _run(self, action: str) -> None:
        own = {b.action for b in self.screen.BINDINGS if isinstance(b, Binding)}
        target = self.screen if action in own else self.app
        self.app.call_later(target.run_action, action)

    def _title(self, binding: Binding) -> str:
        """The action and the key as a person presses it now: "Help (?)", not the key's name
        ("question_mark"), and a key remapped by [keymap] as remapped."""
        for active in self.screen.active_bindings.values():
            if active.binding.action == binding.action:
                return f"{binding.description} ({self.app.get_key_display(active.binding)})"
        return f"{binding.description} ({self.app.get_key_display(binding)})"

    async def discover(self) -> AsyncIterator[DiscoveryHit]:
        for binding in self._bindings():
            yield DiscoveryHit(
                self._title(binding), partial(self._run, binding.action), help=binding.tooltip
            )

    async def search(self, query: str) -> AsyncIterator[Hit]:
        matcher = self.matcher(query)
        for binding in self._bindings():
            text = f"{self._title(binding)} {binding.tooltip}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(self._title(binding)),
                    partial(self._run, binding.action),
                    help=binding.tooltip,
                )
