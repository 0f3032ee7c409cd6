"""nbterm's own SSH key for the instances it launches, so a first launch needs no key pair made by
hand in the console.

A template without ``key_name``, for a host without ``identity_file``, uses it: an ed25519 key
made once in nbterm's state folder (0600, its ``.pub`` beside it), imported to EC2 with
``ImportKeyPair`` under a name made from the key's own fingerprint. Two laptops each have their
own key and so their own name: neither ever overwrites the other's, and importing again is
never needed (the name says which key it is).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncssh
from botocore.exceptions import ClientError

from nbterm.files import write_private
from nbterm.locations import own_key_file
from nbterm.services.cloud.ec2 import Ec2, explain

KEY_TYPE = "ssh-ed25519"


def ensure_key(path: Path | None = None) -> Path:
    """nbterm's private key (made the first time); returns its path."""
    path = path or own_key_file()
    public = path.with_name(path.name + ".pub")
    if path.exists() and public.exists():
        return path
    key = asyncssh.generate_private_key(KEY_TYPE, comment="nbterm")
    write_private(path, key.export_private_key("openssh"))
    write_private(public, key.export_public_key("openssh"))
    return path


def key_name(path: Path) -> str:
    """The EC2 key pair name for this key: ``nbterm-`` and 32 hex digits of its fingerprint."""
    blob = asyncssh.read_public_key(path.with_name(path.name + ".pub")).public_data
    return "nbterm-" + hashlib.sha256(blob).hexdigest()[:32]


def ensure_imported(ec2: Ec2, path: Path) -> str:
    """The key pair's name, importing the public key to EC2 first if this region lacks it."""
    name = key_name(path)
    try:
        ec2.client.describe_key_pairs(KeyNames=[name])
        return name
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidKeyPair.NotFound":
            raise explain(exc, "looking up nbterm's key pair", ec2.aws.profile) from None
    material = path.with_name(path.name + ".pub").read_bytes()
    try:
        ec2.client.import_key_pair(
            KeyName=name,
            PublicKeyMaterial=material,
            TagSpecifications=[
                {"ResourceType": "key-pair", "Tags": [{"Key": "nbterm:key", "Value": "own"}]}
            ],
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidKeyPair.Duplicate":
            raise explain(exc, "importing nbterm's key pair", ec2.aws.profile) from None
    return name
