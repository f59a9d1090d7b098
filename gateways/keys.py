"""Private keys at rest and host-key fingerprints (no Django: the secret is passed in).

A private key pasted into the gateway form is stored encrypted with Fernet (AES-128-CBC and
HMAC-SHA256) under a key derived from the site's ``SECRET_KEY`` with HKDF-SHA256
(info ``relaycc gateway private keys``). Rotating ``SECRET_KEY`` makes stored keys unreadable:
:func:`decrypt_private_key` then raises :class:`KeyUnavailable` and the gateway asks for the key
again. Keys are never shown again once stored.

Fingerprints are OpenSSH's ``SHA256:<base64 without padding>`` of the public key blob, the
form ``ssh-keygen -lf`` prints, so an administrator can compare it with the server's console.
"""

from __future__ import annotations

import base64

import asyncssh
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"relaycc gateway private keys"


class KeyUnavailable(ValueError):
    """A stored key cannot be decrypted (SECRET_KEY changed) or parsed."""


def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def validate_private_key(text: str, passphrase: str | None = None) -> str:
    """The key re-exported in OpenSSH format without a passphrase; ValueError when unreadable."""
    try:
        key = asyncssh.import_private_key(text.strip() + "\n", passphrase or None)
    except (asyncssh.KeyImportError, ValueError) as error:
        raise ValueError(str(error)) from error
    return key.export_private_key("openssh").decode("ascii")


def encrypt_private_key(text: str, *, secret: str) -> str:
    return _fernet(secret).encrypt(text.encode("utf-8")).decode("ascii")


def decrypt_private_key(token: str, *, secret: str) -> str:
    try:
        return _fernet(secret).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError) as error:
        raise KeyUnavailable("the stored key cannot be decrypted") from error


def public_key_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode("ascii").strip()


def fingerprint(public_key: str) -> str:
    """``SHA256:…`` of an OpenSSH public key line."""
    key = asyncssh.import_public_key(public_key)
    return str(key.get_fingerprint("sha256"))
