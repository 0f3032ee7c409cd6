"""The shape of the user's TOML file: typed, immutable, and strict about unknown keys.

Field docs here are the config reference: the README's reference section is checked against them.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

Port = Annotated[StrictInt, Field(ge=1, le=65535)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
Name = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=64)]
NonEmpty = Annotated[StrictStr, Field(min_length=1)]
# Values that end up in the generated OpenSSH config must not be able to smuggle in a directive.
Token = Annotated[StrictStr, Field(pattern=r"^[^\s\"'\\#]+$")]
PathText = Annotated[StrictStr, Field(pattern=r"^[^\x00-\x1f\"]+$")]


class _Model(BaseModel):
    # Field docs are attribute docstrings, read by config/reference.py (not at run time:
    # pydantic's use_attribute_docstrings reads the source on import, which slows start-up).
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class AwsConfig(_Model):
    """``[aws]``: where EC2 is. Omitted keys fall back to boto3's usual chain."""

    profile: NonEmpty | None = None
    """AWS profile from ``~/.aws/config``; default: ``$AWS_PROFILE`` or boto3's default."""
    region: NonEmpty | None = None
    """AWS region, for example ``us-east-1``; default: the profile's region."""
    endpoint_url: Annotated[StrictStr, Field(pattern=r"^https?://\S+$")] | None = None
    """An EC2-compatible endpoint instead of AWS (moto in tests and the demo)."""
    console_key_wait: Annotated[StrictInt, Field(ge=0)] = 180
    """Seconds to wait for a new instance to print its host keys on the console (cloud-init does
    a little after boot) before asking you to check the fingerprint yourself."""


class DefaultsConfig(_Model):
    """``[defaults]``: SSH settings every host inherits unless it sets its own."""

    user: Token | None = None
    """Login user; default: your local user name, as OpenSSH does."""
    identity_file: PathText | None = None
    """Private key to log in with (must be mode 0600); default: ssh-agent and OpenSSH's defaults."""
    port: Port = 22
    """SSH port."""
    connect_timeout: PositiveInt = 15
    """Seconds to wait for an SSH connection before reporting it failed."""
    keepalive_interval: PositiveInt = 15
    """Seconds between SSH keepalives; a dead link is noticed after interval x count."""
    keepalive_count_max: PositiveInt = 3
    """Unanswered keepalives before the connection is declared dead."""


class JupyterConfig(_Model):
    """``[jupyter]``: how Jupyter runs on the remote and where the tunnel listens locally."""

    command: NonEmpty = "jupyter lab"
    """Command that starts Jupyter on the remote (full path if it is not on the non-login PATH)."""
    remote_port: Port = 8888
    """Port Jupyter listens on, on the remote's 127.0.0.1."""
    local_port: Port = 8157
    """First local port for tunnels; hosts without their own take the next free ones in order."""
    notebook_dir: NonEmpty = "~/notebooks"
    """Directory Jupyter serves on the remote."""
    tmux_session: Name = "nbterm-jupyter"
    """Name of the remote tmux session that keeps Jupyter running after you disconnect."""


class HostJupyterConfig(_Model):
    """``[hosts.NAME.jupyter]``: per-host overrides of ``[jupyter]``."""

    command: NonEmpty | None = None
    remote_port: Port | None = None
    local_port: Port | None = None
    notebook_dir: NonEmpty | None = None
    tmux_session: Name | None = None


class HostConfig(_Model):
    """``[hosts.NAME]``: a machine to run Jupyter on: a plain SSH host or an EC2 instance."""

    hostname: Token | None = None
    """Address of a plain SSH host (no AWS)."""
    instance: NonEmpty | None = None
    """EC2 instance: its Name tag or instance id. Its address is looked up live, never pasted."""
    template: Name | None = None
    """Template used to launch this host's instance (``[templates.NAME]``)."""
    address: Token | None = None
    """EC2 only: reach the instance's SSH at this address instead of its public DNS name (a port
    forward, a VPN, the demo). Its host key is still checked under the instance id."""
    port: Port | None = None
    """SSH port; default: ``defaults.port``."""
    user: Token | None = None
    """Login user; default: ``defaults.user``."""
    identity_file: PathText | None = None
    """Private key; default: ``defaults.identity_file``."""
    proxy_jump: Token | None = None
    """Jump host: the name of another host here, or ``[user@]host[:port]``."""
    jupyter: HostJupyterConfig = HostJupyterConfig()
    """Overrides of ``[jupyter]`` for this host."""

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        ec2 = self.instance is not None or self.template is not None
        if self.hostname is not None and ec2:
            raise ValueError(
                "set either hostname (a plain SSH host) or instance/template (an EC2 instance), "
                "not both"
            )
        if self.address is not None and not ec2:
            raise ValueError("address only applies to EC2 hosts; a plain host uses hostname")
        if self.hostname is None and not ec2:
            raise ValueError(
                'say where this host is: hostname = "..." for a plain SSH host, or '
                'instance = "..." / template = "..." for an EC2 instance'
            )
        return self

    @property
    def is_ec2(self) -> bool:
        return self.hostname is None


class TemplateConfig(_Model):
    """``[templates.NAME]``: how to launch an EC2 instance."""

    ami: Annotated[StrictStr, Field(pattern=r"^ami-[0-9a-f]+$")]
    """Image id, for example ``ami-0abcdef1234567890``."""
    instance_type: NonEmpty
    """Instance type, for example ``g5.xlarge``."""
    spot: StrictBool = False
    """Launch as a spot instance (cheaper, can be interrupted with two minutes' notice)."""
    max_price: Annotated[float, Field(gt=0, strict=False)] | None = None
    """Highest spot price per hour, in USD; default: the on-demand price."""
    key_name: NonEmpty | None = None
    """EC2 key pair to install on the instance."""
    security_group_ids: tuple[NonEmpty, ...] = ()
    """Security groups; default: the VPC's default group."""
    subnet_id: NonEmpty | None = None
    """Subnet; default: the default VPC's subnet chosen by EC2."""
    volume_gb: PositiveInt | None = None
    """Root volume size in GiB; default: the AMI's."""
    idle_stop_minutes: PositiveInt | None = None
    """Stop the instance (after a final sync) when Jupyter has been idle this long."""
    user_data: StrictStr | None = None
    """cloud-init user data passed at launch."""
    tags: dict[NonEmpty, StrictStr] = {}
    """Extra tags for the instance (nbterm adds Name and its own tag)."""

    @field_validator("max_price")
    @classmethod
    def _price_needs_spot(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not info.data.get("spot", False):
            raise ValueError("max_price only applies to spot instances: add spot = true")
        return value


class SyncRule(_Model):
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
    git_commit: StrictBool = False
    """Commit the local copy after each sync that changed something."""
    git_init: StrictBool = False
    """Create the git repository in ``local`` if there is none (with ``git_commit``)."""


class Config(_Model):
    """The whole file."""

    aws: AwsConfig = AwsConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    jupyter: JupyterConfig = JupyterConfig()
    hosts: dict[Name, HostConfig] = {}
    templates: dict[Name, TemplateConfig] = {}
    sync: tuple[SyncRule, ...] = ()
    keymap: dict[Annotated[StrictStr, Field(pattern=r"^[a-z_]+\.[a-z_]+$")], NonEmpty] = {}
    """Your own keys, by binding id (see the help screen): ``"host.up" = "ctrl+u"``."""
