"""The shape of the user's TOML file: typed, immutable, and strict about unknown keys.

Each class is a table of the file; ``validate.py`` builds them from the parsed TOML and explains
every problem. Field docs here are the config reference: the README's reference section is
generated from them (``config/reference.py`` reads them from this file's source).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from nbterm.config.validate import Length, Pattern, Range

Port = Annotated[int, Range(ge=1, le=65535, says="port must be between 1 and 65535")]
PositiveInt = Annotated[int, Range(gt=0)]
NotifyRoute = Annotated[
    str, Pattern("auto|notify-send|osascript|tmux|terminal",
                 "auto, notify-send, osascript, tmux or terminal")
]  # fmt: skip
NonEmpty = Annotated[str, Length(min=1)]
Name = Annotated[
    str,
    Length(max=64),
    Pattern(
        r"[A-Za-z0-9][A-Za-z0-9._-]*",
        "a name of letters, digits, '.', '_' and '-'",
        as_name="may only contain letters, digits, '.', '_' and '-' "
        "(and must start with a letter or digit)",
    ),
]
# Values that end up in the generated OpenSSH config must not be able to smuggle in a directive.
_SSH_WORD = r"[^\s\"'\\#]+"
HostAddress = Annotated[str, Pattern(_SSH_WORD, "a host name or address without spaces or quotes")]
UserName = Annotated[str, Pattern(_SSH_WORD, "a user name without spaces or quotes")]
JumpHost = Annotated[
    str, Pattern(_SSH_WORD, "a host name or [user@]host[:port] without spaces or quotes")
]
PathText = Annotated[
    str, Pattern(r"[^\x00-\x1f\"]+", "a path without quotes or control characters")
]
CommandLine = Annotated[
    str, Pattern(r"[^\x00-\x1f]+", "a command on one line, without control characters")
]
Url = Annotated[str, Pattern(r"https?://\S+", "an http:// or https:// URL")]
AmiId = Annotated[str, Pattern(r"ami-[0-9a-f]+", "an AMI id such as ami-0abcdef1234567890")]
Connect = Annotated[str, Pattern("ssh|ssm", "ssh or ssm")]
BindingId = Annotated[
    str, Pattern(r"[a-z_]+\.[a-z_]+", "a binding id such as host.up (see the help screen)")
]


@dataclass(frozen=True, kw_only=True)
class AwsConfig:
    """``[aws]``: where EC2 is. Omitted keys fall back to boto3's usual chain."""

    profile: NonEmpty | None = None
    """AWS profile from ``~/.aws/config``; default: ``$AWS_PROFILE`` or boto3's default."""
    region: NonEmpty | None = None
    """AWS region, for example ``us-east-1``; default: the profile's region."""
    endpoint_url: Url | None = None
    """An AWS-compatible endpoint instead of AWS, for EC2, STS and Systems Manager alike (moto
    in tests and the demo)."""
    console_key_wait: Annotated[int, Range(ge=0)] = 180
    """Seconds to wait for a new instance to print its host keys on the console (cloud-init does
    a little after boot) before asking you to check the fingerprint yourself."""
    daily_budget: Annotated[float, Range(gt=0)] | None = None
    """USD a day across instances, at the prices nbterm shows: a warning at 80%; at 100% the
    cockpit stops every running instance, each after a final sync (`nbterm up` stops its own)."""
    final_sync_grace_minutes: Annotated[int, Range(ge=0)] = 10
    """When a limit stops an instance (the daily budget, `max_hours`, idle) and its final sync
    fails, nbterm retries it this long, then stops anyway (the disk keeps the notebooks; the
    next up brings them home). A stop you ask for is refused instead."""
    on_demand_prices: dict[NonEmpty, Annotated[float, Range(gt=0)]] = field(default_factory=dict)
    """USD an hour by instance type (``{ "g5.xlarge" = 1.006 }``), used instead of the AWS
    Pricing API's list price: a private rate, or an endpoint with no Pricing API (the demo's).
    Costs, the daily budget and its stops go by it."""
    spot_prices: dict[NonEmpty, Annotated[float, Range(gt=0)]] = field(default_factory=dict)
    """USD an hour by instance type for spot instances, used instead of the zone's spot price
    history (an endpoint whose price history is not real, as the demo's)."""


@dataclass(frozen=True, kw_only=True)
class ForwardConfig:
    """``forwards = [{ name = "tensorboard", remote_port = 6006 }]``: one more port of the remote
    reached on the laptop's 127.0.0.1 (TensorBoard, MLflow, a Dask dashboard, an app started from
    a cell), through the host's SSH connection and its healing, with a health probe of its own."""

    name: Name
    """Its name in the Tunnels pane, the ``o``/``c`` choice and ``nbterm up``'s output."""
    remote_port: Port
    """Port on the remote's 127.0.0.1."""
    local_port: Port | None = None
    """Port on the laptop's 127.0.0.1; default: the remote port. Taken: the next free one."""
    open_on_up: bool = False
    """Open it in the browser once the host is up (the cockpit's ``u``, ``nbterm up``)."""


@dataclass(frozen=True, kw_only=True)
class DefaultsConfig:
    """``[defaults]``: SSH settings every host inherits unless it sets its own."""

    user: UserName | None = None
    """Login user; default: your local user name, as OpenSSH does."""
    identity_file: PathText | None = None
    """Private key to log in with (must be mode 0600); default: ssh-agent and OpenSSH's defaults.
    A passphrase-protected key is used through ssh-agent (matched by its ``.pub`` file)."""
    identity_agent: PathText | None = None
    """Agent socket that holds your keys (OpenSSH's IdentityAgent: 1Password, Secretive);
    default: ``$SSH_AUTH_SOCK``."""
    certificate_file: PathText | None = None
    """OpenSSH certificate to present with the key (OpenSSH's CertificateFile)."""
    port: Port = 22
    """SSH port."""
    connect_timeout: PositiveInt = 15
    """Seconds to wait for an SSH connection before reporting it failed."""
    keepalive_interval: PositiveInt = 15
    """Seconds between SSH keepalives; a dead link is noticed after interval x count."""
    keepalive_count_max: PositiveInt = 3
    """Unanswered keepalives before the connection is declared dead."""
    forwards: tuple[ForwardConfig, ...] | None = None
    """Ports of the remote besides Jupyter's for every host (see ``forwards = [{ ... }]``); a host
    or its template that sets its own replaces these."""


@dataclass(frozen=True, kw_only=True)
class JupyterConfig:
    """``[jupyter]``: how Jupyter runs on the remote and where the tunnel listens locally."""

    command: NonEmpty = "jupyter lab"
    """Command that starts Jupyter on the remote (full path if it is not on the non-login PATH).
    nbterm adds its flags (loopback only, the port, the folder) at its end, or where it says
    ``{flags}``: ``bash -c 'conda activate ml && jupyter lab {flags}'``."""
    remote_port: Port = 8888
    """Port Jupyter listens on, on the remote's 127.0.0.1."""
    local_port: Port = 8157
    """First local port for tunnels; hosts without their own take the next free ones in order."""
    notebook_dir: NonEmpty = "~/notebooks"
    """Directory Jupyter serves on the remote."""
    tmux_session: Name = "nbterm-jupyter"
    """Name of the remote tmux session that keeps Jupyter running after you disconnect."""
    login_shell: bool = False
    """Start Jupyter from a login shell (``$SHELL -l``), which reads ``~/.profile`` or
    ``~/.bash_profile``: for a ``jupyter`` that only conda's or pyenv's set-up puts on PATH."""
    install_python: CommandLine = "python3"
    """The remote Python that makes ``~/.nbterm/jupyter`` when ``up`` installs Jupyter on a
    host that has none (``--install-jupyter``, or yes in the cockpit's question)."""
    install_pip_args: tuple[NonEmpty, ...] = ()
    """Extra pip arguments for that install: ``["--index-url", "https://mirror/simple"]``, or
    an offline wheelhouse: ``["--no-index", "--find-links", "/srv/wheels"]``."""


@dataclass(frozen=True, kw_only=True)
class HostJupyterConfig:
    """``[hosts.NAME.jupyter]``: per-host overrides of ``[jupyter]``."""

    command: NonEmpty | None = None
    remote_port: Port | None = None
    local_port: Port | None = None
    notebook_dir: NonEmpty | None = None
    tmux_session: Name | None = None
    login_shell: bool | None = None


@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """``[hosts.NAME]``: a machine to run Jupyter on: a plain SSH host or an EC2 instance."""

    hostname: HostAddress | None = None
    """Address of a plain SSH host (no AWS)."""
    instance: NonEmpty | None = None
    """EC2 instance: its Name tag or instance id. Its address is looked up live, never pasted."""
    template: Name | None = None
    """Template used to launch this host's instance (``[templates.NAME]``)."""
    address: HostAddress | None = None
    """EC2 only: reach the instance's SSH at this address instead of its public DNS name (a port
    forward, a VPN, the demo). Its host key is still checked under the instance id."""
    port: Port | None = None
    """SSH port; default: ``defaults.port``."""
    user: UserName | None = None
    """Login user; default: ``defaults.user``."""
    identity_file: PathText | None = None
    """Private key; default: ``defaults.identity_file``."""
    identity_agent: PathText | None = None
    """Agent socket; default: ``defaults.identity_agent``."""
    certificate_file: PathText | None = None
    """OpenSSH certificate; default: ``defaults.certificate_file``."""
    proxy_jump: JumpHost | None = None
    """Jump host: the name of another host here, or ``[user@]host[:port]``."""
    proxy_command: CommandLine | None = None
    """Command whose input and output reach the host's SSH server (OpenSSH's ProxyCommand), run
    by ``/bin/sh``; ``%h``, ``%p``, ``%r`` and ``%%`` are replaced. For AWS Systems Manager, set
    ``connect = "ssm"`` instead: nbterm then knows the instance needs no address."""
    connect: Connect | None = None
    """EC2 only: how the laptop reaches the instance's SSH: ``ssh``, at its address, or
    ``ssm``, through AWS Systems Manager (``aws ssm start-session``, by instance id: no public
    address or open port 22; needs the AWS CLI and its session-manager-plugin here, and SSM's
    agent on the instance); default: the template's, else ``ssh``."""
    jupyter: HostJupyterConfig = field(default_factory=HostJupyterConfig)
    """Overrides of ``[jupyter]`` for this host."""
    forwards: tuple[ForwardConfig, ...] | None = None
    """Ports of the remote besides Jupyter's (see ``forwards = [{ ... }]``); default: the
    template's, else ``defaults.forwards``. ``[]``: none."""

    def validate(self) -> Iterator[tuple[str, str]]:
        ec2 = self.instance is not None or self.template is not None
        if self.hostname is not None and ec2:
            yield (
                "",
                "set either hostname (a plain SSH host) or instance/template (an EC2 instance), "
                "not both",
            )
        elif self.address is not None and not ec2:
            yield "", "address only applies to EC2 hosts; a plain host uses hostname"
        elif self.hostname is None and not ec2:
            yield (
                "",
                'say where this host is: hostname = "..." for a plain SSH host, or '
                'instance = "..." / template = "..." for an EC2 instance',
            )
        if self.proxy_jump is not None and self.proxy_command is not None:
            yield "proxy_command", "set proxy_jump or proxy_command, not both"
        if self.connect == "ssm":
            if not ec2:
                yield (
                    "connect",
                    'connect = "ssm" reaches an EC2 instance by its id: this is a plain SSH '
                    "host (hostname = ...)",
                )
            for key in ("address", "proxy_jump", "proxy_command"):
                if getattr(self, key) is not None:
                    yield key, f'connect = "ssm" is the way in already: remove {key}'

    @property
    def is_ec2(self) -> bool:
        return self.hostname is None


@dataclass(frozen=True, kw_only=True)
class TemplateConfig:
    """``[templates.NAME]``: how to launch an EC2 instance."""

    ami: AmiId
    """Image id, for example ``ami-0abcdef1234567890``."""
    instance_type: NonEmpty
    """Instance type, for example ``g5.xlarge``."""
    spot: bool = False
    """Launch as a spot instance (cheaper, can be interrupted with two minutes' notice)."""
    max_price: Annotated[float, Range(gt=0)] | None = None
    """Highest spot price per hour, in USD; default: the on-demand price."""
    key_name: NonEmpty | None = None
    """EC2 key pair to install on the instance. Without it (and without an ``identity_file``
    for the host), nbterm makes its own ed25519 key in its state folder and imports it to EC2
    at the first launch, named after its fingerprint."""
    security_group_ids: tuple[NonEmpty, ...] = ()
    """Security groups; default: the VPC's default group."""
    subnet_id: NonEmpty | None = None
    """Subnet; default: the default VPC's subnet chosen by EC2."""
    connect: Connect = "ssh"
    """How its hosts are reached (a host's own ``connect`` wins): ``ssh``, at the instance's
    address, or ``ssm``, through AWS Systems Manager: then ``launch`` asks for no public address,
    and waits until SSM's agent is online instead of probing port 22."""
    instance_profile: NonEmpty | None = None
    """IAM instance profile to launch with (its name, or its ARN): for ``connect = "ssm"``, one
    whose role has the AmazonSSMManagedInstanceCore policy, so that SSM's agent can register."""
    volume_gb: PositiveInt | None = None
    """Root volume size in GiB; default: the AMI's."""
    idle_stop_minutes: PositiveInt | None = None
    """Stop the instance (after a final sync) when Jupyter has been idle this long. It also
    arms the idle guard on the instance (``guard``), which acts when no nbterm is attached."""
    max_hours: PositiveInt | None = None
    """Stop the instance after this many hours of uptime, busy or not (a warning 10 minutes
    before, then a final sync). The idle guard enforces it too when no nbterm is attached."""
    guard: bool = True
    """With ``idle_stop_minutes``: install nbterm's idle guard beside Jupyter, so a forgotten
    instance stops even with the laptop closed (``nbterm guard off HOST`` disarms it)."""
    guard_grace_minutes: PositiveInt = 10
    """The guard powers off after ``idle_stop_minutes`` plus this many minutes."""
    guard_lease_minutes: PositiveInt = 10
    """The guard acts only when no nbterm has been attached for this long (an attached
    nbterm is in charge: it warns and makes a final sync first)."""
    gpu_busy_percent: Annotated[float, Range(gt=0, le=100)] = 5.0
    """A GPU at this utilisation or more is work: the machine is not idle, whatever Jupyter
    says (a training run started in the remote's tmux). For the guard and an attached nbterm."""
    cpu_busy_cores: Annotated[float, Range(gt=0)] = 0.5
    """The login user's processes using this many CPU cores or more are work (a CPU-bound
    process is one core); nbterm's own guard is left out."""
    power_off_command: CommandLine = "sudo -n shutdown -h now"
    """How the guard powers the instance off (the one step that needs privileges; nbterm
    launches instances with shutdown behaviour "stop", so this stops it, disk kept)."""
    packages: tuple[NonEmpty, ...] = ()
    """Python packages installed beside JupyterLab when nbterm installs Jupyter on an
    instance that has none (``numpy``, ``torch==2.5.1``...)."""
    user_data: str | None = None
    """cloud-init user data passed at launch."""
    tags: dict[NonEmpty, str] = field(default_factory=dict)
    """Extra tags for the instance (nbterm adds Name and its own tag)."""
    forwards: tuple[ForwardConfig, ...] | None = None
    """Ports of its hosts besides Jupyter's (see ``forwards = [{ ... }]``), unless a host sets its
    own; default: ``defaults.forwards``."""

    def validate(self) -> Iterator[tuple[str, str]]:
        if self.max_price is not None and not self.spot:
            yield "max_price", "max_price only applies to spot instances: add spot = true"


@dataclass(frozen=True, kw_only=True)
class SyncRule:
    """``[[sync]]``: pull notebooks from a host into a local folder. Never deletes local files."""

    host: Name
    """The host (``[hosts.NAME]``) to pull from."""
    remote: NonEmpty
    """Directory on the remote, for example ``~/notebooks/``."""
    local: NonEmpty
    """Local directory that receives the copies."""
    include: tuple[NonEmpty, ...] = ("*.ipynb",)
    """rsync patterns of files to pull."""
    exclude: tuple[NonEmpty, ...] = ()
    """rsync patterns to skip (``.ipynb_checkpoints/`` and Jupyter's ``.~*`` files always are)."""
    interval: PositiveInt = 30
    """Seconds between timed syncs; remote changes also trigger one within seconds."""
    git_commit: bool = False
    """Commit the local copy after each sync that changed something."""
    git_init: bool = False
    """Create the git repository in ``local`` if there is none (with ``git_commit``)."""
    max_file_mb: PositiveInt = 200
    """Files larger than this many MB are not pulled (the log names each one): a remote can
    otherwise fill the laptop's memory and disk (every file is kept twice, staged and home)."""
    restore_deleted: bool = True
    """Bring back a local copy that disappeared (the remote is the source of truth); false
    keeps a notebook you deleted locally deleted until the remote has a new version of it."""


@dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    """``[notify]``: what reaches you in another tmux window or app: the terminal bell (tmux
    marks the window) and a desktop notification (the laptop's notifier, tmux's status line or
    the terminal's OSC 9/777)."""

    bell: bool = True
    """Ring the terminal bell."""
    desktop: bool = True
    """Show a desktop notification (see ``desktop_via``)."""
    desktop_via: NotifyRoute = "auto"
    """How: ``auto`` uses the laptop's notifier where a desktop session is there (``notify-send``
    on Linux, ``osascript`` on macOS), plus tmux's status line inside tmux, else the terminal
    (OSC 9/777, outside tmux only). ``nbterm config check`` says which is live."""
    spot: bool = True
    """On a spot interruption notice."""
    idle: bool = True
    """On an idle-stop warning, and when an idle instance is being stopped."""
    sync_failed: bool = True
    """When a sync fails (said once, until it works again)."""
    spending: bool = True
    """When ``max_hours`` or ``daily_budget`` is about to stop an instance, and when it does."""
    tunnel_down: bool = True
    """When a host's tunnel has been down for ``tunnel_down_seconds``."""
    tunnel_down_seconds: PositiveInt = 60
    """How long a tunnel may be down (reconnecting) before it is worth a notification."""


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole file."""

    aws: AwsConfig = field(default_factory=AwsConfig)
    defaults: DefaultsConfig = field(default_factory=DefaultsConfig)
    jupyter: JupyterConfig = field(default_factory=JupyterConfig)
    hosts: dict[Name, HostConfig] = field(default_factory=dict)
    templates: dict[Name, TemplateConfig] = field(default_factory=dict)
    sync: tuple[SyncRule, ...] = ()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    keymap: dict[BindingId, NonEmpty] = field(default_factory=dict)
    """Your own keys, by binding id (see the help screen): ``"host.up" = "ctrl+u"``."""
