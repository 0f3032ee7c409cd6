"""The main screen: instances, tunnels and the sync log, and the keys that act on a host."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Log
from textual.worker import Worker, WorkerState

from nbterm.config import LoadedConfig
from nbterm.presenters import Printer, budget_words, journal_decisions, toast
from nbterm.screens.commands import CockpitCommands
from nbterm.services.cloud.idle import parse_time
from nbterm.services.cloud.instance import Instance
from nbterm.services.cloud.spending import Spend
from nbterm.services.host.budget import to_stop
from nbterm.services.journal import Journal
from nbterm.services.remote.events import GpuSample, GuardDecisions, GuardReport, TunnelHealth
from nbterm.services.sync.events import SyncEvent
from nbterm.ui.messages import HostNote, HostStatus, InstancesRefreshed, ServiceEvent
from nbterm.ui.notify import Notifier
from nbterm.widgets.instances import InstancesPane
from nbterm.widgets.sync_log import SyncLogPane
from nbterm.widgets.tunnels import TunnelsPane

if TYPE_CHECKING:  # the dialogs are imported when first shown (start-up stays light)
    from nbterm.screens.launch import LaunchChoice
    from nbterm.services.remote.host_keys import HostKeyQuestion
    from nbterm.ui.controller import Controller

REFRESH_SECONDS = 30.0
NO_TUNNEL_WARN_HOURS = 0.5
"""An instance running this long with no tunnel is probably forgotten: say so, loudly, once."""


class MainScreen(Screen[None]):
    auto_refresh = True
    """Look at EC2 on mount and every REFRESH_SECONDS (off in screenshots and snapshots)."""
    COMMANDS = Screen.COMMANDS | {CockpitCommands}
    BINDINGS = [
        Binding("u", "up", "Up", id="host.up", tooltip="Start or reattach everything for the host"),
        Binding("o", "open", "Open", id="host.open", tooltip="Open the notebook in the browser"),
        Binding("c", "copy_url", "Copy URL", id="host.copy", show=False,
                tooltip="Copy the URL with its token (the laptop's clipboard, else OSC 52)"),
        Binding("s", "sync_now", "Sync", id="host.sync", tooltip="Sync the host's notebooks now"),
        Binding("p", "add_port", "Forward port", id="host.forward", show=False,
                tooltip="Forward one more port of the host, for this session"),
        Binding("x", "close_port", "Close port", id="host.close_forward", show=False,
                tooltip="Close one of the host's other forwarded ports"),
        Binding("d", "down", "Down", id="host.down",
                tooltip="Final sync, close the tunnel, stop an EC2 instance"),
        Binding("l", "launch", "Launch", id="ec2.launch", show=False,
                tooltip="Launch an instance from a template"),
        Binding("t", "terminate", "Terminate", id="ec2.terminate", show=False,
                tooltip="Final sync, then terminate (type the name)"),
        Binding("f", "forget_key", "Forget key", id="host.forget_key", show=False,
                tooltip="Forget the host's stored SSH key, on purpose"),
        Binding("g", "refresh", "Refresh", id="app.refresh", show=False,
                tooltip="Look at EC2 again now"),
    ]  # fmt: skip

    def __init__(
        self, config: LoadedConfig, history: Sequence[str] = (), journal: Journal | None = None
    ) -> None:
        """``history``: the Sync log's lines from the screen this one replaces (a reload);
        ``journal``: where what the Sync log says is kept (``nbterm log``)."""
        super().__init__()
        self.config = config
        self.history = history
        self.journal = journal
        self._warned_idle_instances: set[str] = set()
        self._up: set[str] = set()
        """Hosts whose session is up, as the screen has been told."""
        self._guard_words = Printer()
        self._budget_warned: dt.date | None = None
        self._budget_stopping: set[str] = set()
        """Instances the daily budget is stopping (each run once)."""
        self._worker_hosts: dict[Worker[Any], str] = {}
        """The host each running host worker acts on (a failure marks that host's row)."""

    @property
    def controller(self) -> Controller:
        return cast("Controller", cast(Any, self.app).controller)

    def compose(self) -> ComposeResult:
        yield Header()
        yield InstancesPane(self.config)
        yield TunnelsPane(self.config)
        yield SyncLogPane(self.config, self.history, self.journal)
        yield Footer()

    def on_mount(self) -> None:
        self.controller.attach(self, ask=self._ask_host_key, confirm=self._confirm)
        self.notifier = Notifier(self.config.notify, write=self._write_to_terminal,
                                 bell=self.app.bell, in_tmux="TMUX" in os.environ)  # fmt: skip
        self.set_interval(5.0, self.notifier.check)  # a tunnel down too long: cheap to ask
        if self.auto_refresh and any(host.is_ec2 for host in self.config.hosts.values()):
            self.action_refresh()

    async def _confirm(self, question: str) -> bool:
        """A yes/no question from a host's worker (install Jupyter on a host that has none)."""
        from nbterm.screens.confirm import YesNoScreen

        dialog: Any = YesNoScreen("Install Jupyter?", question)
        return bool(await self.app.push_screen_wait(dialog))

    def _write_to_terminal(self, text: str) -> None:
        """Escape sequences for the terminal itself (Textual writes OSC 52 the same way)."""
        driver = getattr(self.app, "_driver", None)
        if driver is not None and not self.app.is_headless:
            driver.write(text)

    async def _ask_host_key(self, question: HostKeyQuestion) -> bool:
        """Asked from a host's worker: the dialog shows the fingerprint to compare."""
        from nbterm.screens.host_key import HostKeyScreen

        dialog: Any = HostKeyScreen(question)  # push_screen_wait is typed for the app's result
        return bool(await self.app.push_screen_wait(dialog))

    def _for_host(self, name: str, work: Coroutine[Any, Any, None], verb: str, group: str) -> None:
        """Run a host's work in a worker that knows its host (never one that replaces another:
        a second u while one comes up would cancel it, and stop what it started)."""
        worker = self.run_worker(work, group=group, name=f"{verb} {name}", exit_on_error=False)
        self._worker_hosts[worker] = name

    # --- selection ----------------------------------------------------------------------------

    def _selected(self) -> str | None:
        name = self.query_one(InstancesPane).selected_host
        if name is None:
            self.notify("no host selected: add hosts to the config", severity="warning")
        return name

    # --- actions ------------------------------------------------------------------------------

    def action_up(self) -> None:
        name = self._selected()
        if name is None:
            return
        self._for_host(name, self.controller.up(name), "up", f"host:{name}")

    def action_down(self) -> None:
        name = self._selected()
        if name is None:
            return
        host = self.config.hosts[name]

        def confirmed(yes: bool | None) -> None:
            if yes:
                work = self.controller.down(name, stop_instance=True)
                self._for_host(name, work, "down", f"down:{name}")

        if host.is_ec2:
            from nbterm.screens.confirm import YesNoScreen

            self.app.push_screen(
                YesNoScreen(f"Down {name}?", "Final sync, close the tunnel, then stop the "
                            "instance (its disk is kept; Jupyter's kernels end)."),
                confirmed,
            )  # fmt: skip
        else:
            confirmed(True)

    def action_terminate(self) -> None:
        name = self._selected()
        if name is None:
            return
        if not self.config.hosts[name].is_ec2:
            self.notify(f"{name} is a plain SSH host: there is nothing to terminate")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._for_host(name, self.controller.terminate(name), "terminate", f"down:{name}")

        from nbterm.screens.confirm import TypedConfirmScreen

        self.app.push_screen(
            TypedConfirmScreen(
                f"Terminate {name}?",
                "The instance and its disk are deleted. A final sync runs first; if it fails, "
                "nothing is terminated.",
                name,
            ),
            confirmed,
        )

    def action_sync_now(self) -> None:
        name = self._selected()
        if name is not None and not self.controller.sync_now(name):
            self.notify(f"{name} is not up: press u first", severity="warning")

    def _with_url(self, verb: str, then: Callable[[str, str], object]) -> None:
        """``then(page, url)`` for Jupyter's URL, or, for a host with other ports, the one
        chosen: the Tunnels row under the cursor when that pane has focus, else asked."""
        picked = self.query_one(TunnelsPane).picked()
        name = picked[0] if picked is not None else self._selected()
        if name is None:
            return
        running = self.controller.running.get(name)
        if running is None:
            self.notify(f"{name} is not up: press u first", severity="warning")
            return
        others = {forward.name: forward for forward in self.controller.forwards(name)}
        if picked is not None and picked[1] in others:
            then(f"{name}-{picked[1]}", others[picked[1]].url)
            return
        if not others or picked is not None:
            then(name, running.url)
            return

        def chosen(key: str | None) -> None:
            if key in others:
                then(f"{name}-{key}", others[key].url)
            elif key == "jupyter" and name in self.controller.running:
                then(name, self.controller.running[name].url)

        from nbterm.screens.ports import ChoosePortScreen, PortChoice

        jupyter = PortChoice("jupyter", "Jupyter", f"http://127.0.0.1:{running.local_port}/")
        choices = [jupyter, *(PortChoice(o.name, o.name, o.url) for o in others.values())]
        self.app.push_screen(ChoosePortScreen(f"{verb} which port of {name}?", choices), chosen)

    def action_open(self) -> None:
        self._with_url("Open", self._open_in_browser)

    def action_add_port(self) -> None:
        name = self._selected()
        if name is None:
            return
        if name not in self.controller.running:
            self.notify(f"{name} is not up: press u first", severity="warning")
            return

        def given(ports: tuple[int, int | None] | None) -> None:
            if ports is not None:
                work = self.controller.add_forward(name, *ports)
                self._for_host(name, work, "forward", f"forward:{name}")

        from nbterm.screens.ports import AddPortScreen

        self.app.push_screen(AddPortScreen(name), given)

    def action_close_port(self) -> None:
        picked = self.query_one(TunnelsPane).picked()
        name = picked[0] if picked is not None else self._selected()
        if name is None:
            return
        others = {forward.name: forward for forward in self.controller.forwards(name)}
        if not others:
            self.notify(f"{name} has no other port open (p forwards one)", severity="warning")
            return

        def chosen(key: str | None) -> None:
            if key in others:
                work = self.controller.close_forward(name, key)
                self._for_host(name, work, "close port", f"forward:{name}")

        if picked is not None and picked[1] in others:
            chosen(picked[1])
            return
        from nbterm.screens.ports import ChoosePortScreen, PortChoice

        choices = [PortChoice(o.name, o.name, o.url) for o in others.values()]
        self.app.push_screen(ChoosePortScreen(f"Close which port of {name}?", choices), chosen)

    @work(thread=True, exit_on_error=False, group="browser")
    def _open_in_browser(self, name: str, url: str) -> None:
        """Through a private redirect page: the token never goes on the browser's command line."""
        from nbterm.browser import open_private

        if not open_private(self.controller.paths, name, url):
            self.app.call_from_thread(self.notify, "no browser found: press c to copy the URL")

    def action_copy_url(self) -> None:
        self._with_url("Copy", self._copy)

    @work(thread=True, exit_on_error=False, group="clipboard")
    def _copy(self, page: str, url: str) -> None:
        """ "Copied" only where it was: the laptop's clipboard tool, else OSC 52 where tmux lets
        it through, else the words say how, with the URL to select by hand."""
        from nbterm.services import desktop

        tool = desktop.copier()
        if tool is not None and not desktop.copy_with(tool, url):
            tool = None  # the tool failed: said as not copied by it
        asked = None if tool else desktop.tmux_set_clipboard()  # tmux only when no tool copied
        what = "URL (with its token)" if "token=" in url else "URL"
        plan = desktop.plan_copy(what, tool=tool, in_tmux="TMUX" in os.environ,
                                 set_clipboard=asked)  # fmt: skip
        if plan.osc52:
            self.app.call_from_thread(self.app.copy_to_clipboard, url)
        if plan.tool or plan.osc52:
            self.app.call_from_thread(self.notify, plan.words)
        else:  # the URL on a line of its own, to select by hand (tmux: copy mode)
            from nbterm.screens.confirm import ShownScreen

            shown = ShownScreen("The URL was not copied", plan.words, url)
            self.app.call_from_thread(self.app.push_screen, shown)

    def action_forget_key(self) -> None:
        """Forgetting a host key is asked first, and never done under an open session (the
        next connection would ask about the key again while the tunnel still uses it)."""
        name = self._selected()
        if name is None:
            return
        if name in self.controller.running:
            self.notify(f"{name} is up: press d first, then f forgets its key", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._forget(name)

        from nbterm.screens.confirm import YesNoScreen

        self.app.push_screen(
            YesNoScreen(f"Forget the host key of {name}?", "nbterm stops trusting the key it "
                        "stored for this host: the next connection shows the key it presents "
                        "and asks again. Do this only when you know the host changed its key."),
            confirmed,
        )  # fmt: skip

    @work(thread=True, group="keys", name="forget key", exit_on_error=False)
    def _forget(self, name: str) -> None:
        removed = self.controller.forget_key(name)
        text = f"forgot {removed} key(s) of {name}" if removed else f"no stored key for {name}"
        self.app.call_from_thread(self.notify, text)

    def action_launch(self) -> None:
        def chosen(choice: LaunchChoice | None) -> None:
            if choice is not None:
                self._launch(choice)

        from nbterm.screens.launch import LaunchScreen

        self.app.push_screen(LaunchScreen(self.config), chosen)

    @work(thread=True, group="ec2", name="launch", exit_on_error=False)
    def _launch(self, choice: LaunchChoice) -> None:
        template = self.config.templates[choice.template]
        instance = self.controller.launch(choice.host, template, spot=choice.spot, tag=choice.name)
        self.app.call_from_thread(self._up_after_launch, choice.host, instance.id)

    def _up_after_launch(self, name: str, instance_id: str) -> None:
        """A launch goes straight on to its up: its idle guard is armed as soon as SSH answers,
        and nothing launched here is left running unwatched."""
        self.notify(f"launched {instance_id} for {name}: bringing it up")
        self._for_host(name, self.controller.up(name), "up", f"host:{name}")

    def action_refresh(self) -> None:
        if self.auto_refresh:
            self._refresh()

    @work(thread=True, group="ec2-refresh", name="EC2 refresh", exclusive=True, exit_on_error=False)
    def _refresh(self) -> None:
        self.controller.refresh_instances()

    # --- what the services say -------------------------------------------------------------------

    @on(ServiceEvent)
    def _service_event(self, message: ServiceEvent) -> None:
        event = message.event
        if isinstance(event, SyncEvent):
            self.query_one(SyncLogPane).apply(event)
        else:
            self.query_one(TunnelsPane).apply(event)
        if isinstance(event, GpuSample):
            self.query_one(InstancesPane).set_gpu(event)
        if isinstance(event, GuardDecisions) and self.journal is not None:
            journal_decisions(self.journal, event)
        if isinstance(event, GuardReport):  # read every minute: said when what it says changes
            self.query_one(InstancesPane).set_guard(event)
            line = self._guard_words.line(event)
            if line:
                self.query_one(SyncLogPane).write(line)
                failed = bool(event.failed)  # a guard that cannot stop it: until seen
                self.notify(line, title="Idle guard", severity="error" if failed else "warning",
                            timeout=60 if failed else 10, markup=False)  # fmt: skip
        if isinstance(event, TunnelHealth) and event.last_activity:
            since = parse_time(event.last_activity)
            if since is not None:
                self.query_one(InstancesPane).set_jupyter_activity(event.host, since.timestamp())
        self.notifier.event(event)
        said = toast(event)
        if said is not None:
            self.notify(said.text, title=said.title, severity=said.severity, timeout=said.timeout,
                        markup=False)  # fmt: skip
            if not isinstance(event, SyncEvent):  # a toast leaves; what it said stays
                self.query_one(SyncLogPane).write(said.text)

    @on(HostNote)
    def _host_note(self, message: HostNote) -> None:
        self.query_one(SyncLogPane).write(f"{message.host}: {message.text}")

    @on(HostStatus)
    def _host_status(self, message: HostStatus) -> None:
        self.notifier.status(message.host, message.status)
        if message.status in ("up", "starting", "closing"):
            self._up.add(message.host)
        else:
            self._up.discard(message.host)
        self.query_one(TunnelsPane).set_state(message.host, message.status)
        if message.status not in ("up", "starting"):
            self.query_one(InstancesPane).clear_gpu(message.host)
        if not self.config.hosts[message.host].is_ec2:
            self.query_one(InstancesPane).set_state(message.host, message.status)
        if message.detail and message.status != "up":
            self.query_one(SyncLogPane).write(f"{message.host}: {message.detail}")
        if message.status == "up":
            self.query_one(SyncLogPane).write(
                f"{message.host}: up; press o to open, c to copy the URL"
            )
        if message.status == "failed":
            self.notify(message.detail, title=message.host, severity="error", timeout=30)
        if self.config.hosts[message.host].is_ec2 and message.status in (
            "up",
            "down",
            "terminated",
        ):
            self.action_refresh()

    @on(InstancesRefreshed)
    def _instances(self, message: InstancesRefreshed) -> None:
        self.query_one(InstancesPane).apply_instances(message.instances, message.prices,
                                                      message.spend, message.costs)  # fmt: skip
        if message.spend is not None:
            self._budget(message.spend, message.instances)
        for name, instance in message.instances.items():
            if (
                instance is not None
                and instance.state == "running"
                and name not in self._up
                and instance.uptime_hours() >= NO_TUNNEL_WARN_HOURS
                and instance.id not in self._warned_idle_instances
            ):
                self._warned_idle_instances.add(instance.id)
                price = message.prices.get(name)
                cost = f", ${price:.2f}/h" if price else ""
                self.notify(
                    f"{name} ({instance.id}) has been running {instance.uptime_hours():.1f} h with "
                    f"no tunnel open{cost}. Press u to use it, d to stop it.",
                    title="Running, unused?",
                    severity="warning",
                    timeout=60,
                )
        if self.auto_refresh:
            self.set_timer(REFRESH_SECONDS, self.action_refresh)  # poll by rescheduling

    def _budget(self, spend: Spend, instances: dict[str, Instance | None]) -> None:
        """The daily budget: said at 80% (once a day); at 100%, every running instance is
        stopped, each after a final sync (a limit's stop: retried for the grace period, then
        stopped anyway; see services/host/down.py)."""
        words = budget_words(spend)
        if spend.verdict == "warn" and self._budget_warned != dt.date.today():
            self._budget_warned = dt.date.today()
            self.query_one(SyncLogPane).write(words)
            self.notifier.notify("spending", "nbterm", words)
            self.notify(words, title="Daily budget", severity="warning", timeout=60)
        for name, instance in to_stop(spend, instances, self._budget_stopping):
            said = f"{words}: stopping {name} ({instance.id}) after a final sync"
            self.query_one(SyncLogPane).write(said)
            self.notifier.notify("spending", "nbterm", said)
            self.notify(said, title="Daily budget", severity="error", timeout=120)
            self._for_host(name, self.controller.budget_stop(name), "budget stop", f"down:{name}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed worker is a notification, never a crash or a frozen pane."""
        if event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED):
            self._worker_hosts.pop(event.worker, None)
            return
        if event.state != WorkerState.ERROR:
            return
        host = self._worker_hosts.pop(event.worker, None)
        if host is not None:
            self.query_one(TunnelsPane).set_state(host, "failed")
        name = event.worker.name or "work"
        self.notify(str(event.worker.error), title=f"{name} failed", severity="error", timeout=30)


def log_lines(screen: Screen[object]) -> list[str]:
    """What the Sync log of ``screen`` says (a reload's new screen starts with it)."""
    if not isinstance(screen, MainScreen):
        return []
    return list(screen.query_one("#sync-log", Log).lines)
