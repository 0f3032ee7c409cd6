"""What the rest of nbterm uses: the config with every default and inheritance applied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nbterm.config.schema import AwsConfig, Config, NotifyConfig, SyncRule, TemplateConfig


@dataclass(frozen=True)
class JupyterSettings:
    command: str
    remote_port: int
    local_port: int
    """The port nbterm tries first for this host's tunnel (it falls back to a free one)."""
    notebook_dir: str
    tmux_session: str
    login_shell: bool = False
    """Run the Jupyter command (and the check that it exists) in a login shell."""


@dataclass(frozen=True)
class Forward:
    """A port of the remote besides Jupyter's, reached on the laptop's 127.0.0.1."""

    name: str
    remote_port: int
    local_port: int
    """The port nbterm tries first (it falls back to the next free one)."""
    open_on_up: bool = False

    @property
    def key(self) -> str:
        """Its row in the Tunnels pane (a host's name has no '/')."""
        return f"/{self.name}"


@dataclass(frozen=True)
class Host:
    """One host with its settings resolved (host value, else ``[defaults]``, else OpenSSH's)."""

    name: str
    hostname: str | None
    """Address of a plain SSH host; None for EC2 hosts, whose address is looked up live."""
    instance: str | None
    template: str | None
    address: str | None
    """EC2 only: the address that reaches the instance's SSH, instead of its public DNS."""
    port: int
    user: str | None
    identity_file: Path | None
    proxy_jump: str | None
    connect_timeout: int
    keepalive_interval: int
    keepalive_count_max: int
    jupyter: JupyterSettings
    identity_agent: Path | None = None
    certificate_file: Path | None = None
    proxy_command: str | None = None
    forwards: tuple[Forward, ...] = ()
    """Its ports besides Jupyter's (the host's ``forwards``, else its template's, else
    ``defaults.forwards``)."""
    connect: str = "ssh"
    """``ssh`` (at its address) or ``ssm`` (EC2 through AWS Systems Manager, by instance id)."""
    own_key: bool = False
    """An EC2 host launched from a template with no ``key_name`` and given no
    ``identity_file``: it uses nbterm's own key (``identity_file`` points at it)."""

    @property
    def is_ec2(self) -> bool:
        return self.hostname is None

    @property
    def reached_through(self) -> str | None:
        """What stands between the laptop and this host's SSH (its address may be private
        then): the jump host, or its proxy_command; None when it is reached directly."""
        if self.via_ssm:
            return "AWS Systems Manager"
        if self.proxy_jump:
            return self.proxy_jump
        return "its proxy_command" if self.proxy_command else None

    @property
    def via_ssm(self) -> bool:
        """Reached through AWS Systems Manager: by instance id, never at an address."""
        return self.is_ec2 and self.connect == "ssm"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config file."""

    path: Path
    raw: Config
    hosts: dict[str, Host]

    @property
    def aws(self) -> AwsConfig:
        return self.raw.aws

    @property
    def templates(self) -> dict[str, TemplateConfig]:
        return self.raw.templates

    @property
    def sync(self) -> tuple[SyncRule, ...]:
        return self.raw.sync

    @property
    def notify(self) -> NotifyConfig:
        return self.raw.notify

    @property
    def keymap(self) -> dict[str, str]:
        return dict(self.raw.keymap)

    def sync_rules_for(self, host: str) -> list[SyncRule]:
        return [rule for rule in self.raw.sync if rule.host == host]
