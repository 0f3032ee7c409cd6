"""Load the user's TOML file into a validated :class:`LoadedConfig`, or explain what is wrong.

Every problem names the file and the dotted key, and, where it can be placed, the line and column
with the offending line and a caret under it. All problems are reported at once.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
from collections.abc import Iterable
from pathlib import Path

from nbterm.config.errors import ConfigError, Problem
from nbterm.config.locate import KeyPath, locate
from nbterm.config.model import Forward, Host, JupyterSettings, LoadedConfig
from nbterm.config.schema import Config, ForwardConfig, TemplateConfig
from nbterm.config.validate import Invalid, parse
from nbterm.locations import own_key_file

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigNotFoundError(Exception):
    """There is no config file at the path in use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"no config file at {path}: create one with `nbterm config init` "
            "(or pass --config PATH, or set NBTERM_CONFIG)"
        )


def dotted(path: Iterable[str | int]) -> str:
    """``("hosts", "gpu", "port")`` -> ``hosts.gpu.port``; ``("sync", 1)`` -> ``sync[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        out += f".{text}" if out else text
    return out


class _Problems:
    """Collects problems and places them in the source text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines()
        self.items: list[Problem] = []

    def add(self, path: KeyPath, message: str, *, at_value: bool = False) -> None:
        position = locate(self.source, path, at_value=at_value)
        if position is None:
            self.items.append(Problem(dotted(path), message))
            return
        self.items.append(
            Problem(
                dotted(path),
                message,
                position.line,
                position.column,
                self.lines[position.line - 1],
            )
        )


def load_config(path: Path, *, check_files: bool = True) -> LoadedConfig:
    """Read, parse and validate ``path``.

    With ``check_files`` (the default) identity files must exist with private permissions and the
    config file itself must not be writable by others, as OpenSSH insists for its own files.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigNotFoundError(path) from None
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [Problem("", f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_config(source, path, check_files=check_files)


def parse_config(source: str, path: Path, *, check_files: bool = True) -> LoadedConfig:
    problems = _Problems(source)
    try:
        document = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [_syntax_problem(str(exc), problems.lines)]) from None
    if check_files:
        _check_config_mode(path, problems)
    try:
        config = parse(Config, document)
    except Invalid as exc:
        for issue in exc.issues:
            problems.add(issue.path, issue.message, at_value=issue.at_value)
        raise ConfigError(path, _in_order(problems.items)) from None
    hosts = _resolve_hosts(config, path, problems, check_files=check_files)
    _check_references(config, problems)
    if problems.items:
        raise ConfigError(path, _in_order(problems.items))
    return LoadedConfig(path=path, raw=config, hosts=hosts)


def _in_order(items: list[Problem]) -> list[Problem]:
    """File-level problems first, then in the order of the file."""
    return sorted(items, key=lambda p: (p.line is not None, p.line or 0, p.column or 0))


def _syntax_problem(message: str, lines: list[str]) -> Problem:
    match = _TOML_POSITION.search(message)
    if not match:
        return Problem("", f"TOML syntax error: {message}")
    line, column = int(match.group(1)), int(match.group(2))
    text = message[: match.start()]
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    return Problem("", f"TOML syntax error: {text}", line, column, source_line)


def _check_config_mode(path: Path, problems: _Problems) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o022:
        problems.items.append(
            Problem(
                "",
                f"permissions {mode:04o} are too open: the file is writable by group or others, "
                f"who could point your hosts elsewhere (OpenSSH refuses such a config too); "
                f"run: chmod go-w {path}",
            )
        )


# --- checks across tables, and inheritance ------------------------------------------------------


def _suggest(name: str, choices: Iterable[str], what: str) -> str:
    options = sorted(choices)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if options:
        return f" ({what}: {', '.join(options)})"
    return f" (there are no {what})"


def _check_references(config: Config, problems: _Problems) -> None:
    for name, host in config.hosts.items():
        if host.template is not None and host.template not in config.templates:
            problems.add(
                ("hosts", name, "template"),
                f"no template named {host.template!r}"
                + _suggest(host.template, config.templates, "templates"),
                at_value=True,
            )
        if host.proxy_jump == name:
            problems.add(("hosts", name, "proxy_jump"), "a host cannot jump through itself")
    seen_local: dict[str, int] = {}
    for index, rule in enumerate(config.sync):
        if rule.host not in config.hosts:
            problems.add(
                ("sync", index, "host"),
                f"no host named {rule.host!r}" + _suggest(rule.host, config.hosts, "hosts"),
                at_value=True,
            )
        target = os.path.normpath(os.path.expanduser(rule.local))
        if target in seen_local:
            problems.add(
                ("sync", index, "local"),
                f"sync[{seen_local[target]}] already pulls into {target}: "
                "two rules writing one folder would overwrite each other's files",
                at_value=True,
            )
        seen_local.setdefault(target, index)


def _resolve_hosts(
    config: Config, config_path: Path, problems: _Problems, *, check_files: bool
) -> dict[str, Host]:
    explicit: dict[int, str] = {}
    for name, host in config.hosts.items():
        port = host.jupyter.local_port
        if port is None:
            continue
        if port in explicit:
            problems.add(
                ("hosts", name, "jupyter", "local_port"),
                f"local port {port} is already used by host {explicit[port]!r}; "
                "each host's tunnel needs its own port",
                at_value=True,
            )
        explicit.setdefault(port, name)

    defaults, base = config.defaults, config.jupyter
    next_port = base.local_port
    resolved: dict[str, Host] = {}
    checked: set[Path] = set()
    for name, host in config.hosts.items():
        local_port = host.jupyter.local_port
        if local_port is None:
            while next_port in explicit:
                next_port += 1
            local_port, next_port = next_port, next_port + 1
        identity_key: KeyPath = ("hosts", name, "identity_file")
        identity = host.identity_file
        if identity is None:
            identity, identity_key = defaults.identity_file, ("defaults", "identity_file")
        identity_path = _identity_path(identity, config_path) if identity else None
        template = config.templates.get(host.template) if host.template else None
        own_key = (
            host.hostname is None
            and identity is None
            and template is not None
            and template.key_name is None
        )
        if own_key:  # made at the first launch: nothing to check before
            identity_path = own_key_file()
        elif identity_path is not None and check_files and identity_path not in checked:
            checked.add(identity_path)
            _check_identity(identity_path, identity_key, problems)
        connect = host.connect or (template.connect if template is not None else "ssh")
        if connect == "ssm" and host.connect is None:  # the template's: the host's own checked
            _check_ssm_host(config, name, problems)
        overrides = host.jupyter
        agent = host.identity_agent or defaults.identity_agent
        certificate = host.certificate_file or defaults.certificate_file
        resolved[name] = Host(
            name=name,
            hostname=host.hostname,
            instance=host.instance,
            template=host.template,
            address=host.address,
            port=host.port or defaults.port,
            user=host.user or defaults.user,
            identity_file=identity_path,
            proxy_jump=host.proxy_jump,
            connect_timeout=defaults.connect_timeout,
            keepalive_interval=defaults.keepalive_interval,
            keepalive_count_max=defaults.keepalive_count_max,
            jupyter=JupyterSettings(
                command=overrides.command or base.command,
                remote_port=overrides.remote_port or base.remote_port,
                local_port=local_port,
                notebook_dir=overrides.notebook_dir or base.notebook_dir,
                tmux_session=overrides.tmux_session or base.tmux_session,
                login_shell=(
                    base.login_shell if overrides.login_shell is None else overrides.login_shell
                ),
            ),
            identity_agent=_identity_path(agent, config_path) if agent else None,
            certificate_file=_identity_path(certificate, config_path) if certificate else None,
            own_key=own_key,
            proxy_command=host.proxy_command,
            connect=connect,
            forwards=_forwards(config, name, template, local_port, problems),
        )
    if any(host.via_ssm for host in resolved.values()):
        _check_ssm_words(config, problems)
    return resolved


def _check_ssm_host(config: Config, name: str, problems: _Problems) -> None:
    """A host that inherits ``connect = "ssm"`` from its template has no other way in."""
    host = config.hosts[name]
    for key in ("address", "proxy_jump", "proxy_command"):
        if getattr(host, key) is not None:
            problems.add(
                ("hosts", name, key),
                f'its template {host.template!r} says connect = "ssm", the way in already: '
                f'remove {key} (or set connect = "ssh")',
            )


_AWS_WORD = re.compile(r"[A-Za-z0-9._-]+")


def _check_ssm_words(config: Config, problems: _Problems) -> None:
    """``aws ssm start-session`` is run by a shell and written into the generated OpenSSH
    config: the region and profile it names must be plain words there."""
    for key in ("region", "profile"):
        value = getattr(config.aws, key)
        if value is not None and not _AWS_WORD.fullmatch(value):
            problems.add(("aws", key), f"{key} {value!r} has characters that a Systems Manager "
                         "session's command line cannot carry (letters, digits, '.', '_', '-')",
                         at_value=True)  # fmt: skip


def _forwards(
    config: Config,
    name: str,
    template: TemplateConfig | None,
    jupyter_port: int,
    problems: _Problems,
) -> tuple[Forward, ...]:
    """The host's own ``forwards``, else its template's, else ``defaults.forwards``; their names
    and explicit local ports checked where they were written."""
    chosen: tuple[ForwardConfig, ...] = ()
    where: KeyPath = ()
    for candidate, path in (
        (config.hosts[name].forwards, ("hosts", name, "forwards")),
        (template.forwards if template is not None else None,
         ("templates", config.hosts[name].template or "", "forwards")),
        (config.defaults.forwards, ("defaults", "forwards")),
    ):  # fmt: skip
        if candidate is not None:
            chosen, where = candidate, path
            break
    names: dict[str, int] = {}
    ports: dict[int, str] = {jupyter_port: "the Jupyter tunnel"}
    out: list[Forward] = []
    for index, spec in enumerate(chosen):
        at = (*where, index)
        if spec.name == "jupyter":
            problems.add((*at, "name"), "jupyter names the Jupyter tunnel itself: choose another "
                         "name", at_value=True)  # fmt: skip
        elif spec.name in names:
            problems.add((*at, "name"), f"{where[-1]}[{names[spec.name]}] is named {spec.name!r} "
                         "already", at_value=True)  # fmt: skip
        names.setdefault(spec.name, index)
        local = spec.local_port or spec.remote_port
        if spec.local_port is not None and local in ports:
            problems.add((*at, "local_port"), f"local port {local} is taken by {ports[local]} of "
                         f"host {name!r}: each forward needs its own", at_value=True)  # fmt: skip
        ports.setdefault(local, f"forward {spec.name!r}")
        out.append(Forward(spec.name, spec.remote_port, local, spec.open_on_up))
    return tuple(out)


def _identity_path(value: str, config_path: Path) -> Path:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = config_path.parent / path
    return path


def _check_identity(path: Path, key: KeyPath, problems: _Problems) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        problems.add(
            key,
            f"no such private key: {path} (create one with: ssh-keygen -t ed25519 -f {path})",
            at_value=True,
        )
        return
    except OSError as exc:
        problems.add(key, f"cannot read {path}: {exc.strerror}", at_value=True)
        return
    if not stat.S_ISREG(info.st_mode):
        problems.add(key, f"{path} is not a file", at_value=True)
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        problems.add(
            key,
            f"permissions {mode:04o} for {path} are too open: a private key must not be "
            f"accessible by group or others (OpenSSH refuses it too); run: chmod 600 {path}",
            at_value=True,
        )
