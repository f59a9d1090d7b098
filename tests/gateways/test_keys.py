from __future__ import annotations

import asyncssh
import pytest

from gateways import keys

SECRET = "a-secret-key-for-these-tests-only-0123456789"


def test_private_key_round_trips_through_encryption_and_is_not_stored_in_clear() -> None:
    text = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    token = keys.encrypt_private_key(text, secret=SECRET)
    assert "PRIVATE KEY" not in token
    assert keys.decrypt_private_key(token, secret=SECRET) == text


def test_another_secret_key_cannot_decrypt() -> None:
    token = keys.encrypt_private_key("key", secret=SECRET)
    with pytest.raises(keys.KeyUnavailable):
        keys.decrypt_private_key(token, secret=SECRET + "x")


def test_validate_private_key_accepts_pem_with_passphrase_and_refuses_garbage() -> None:
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    pem = key.export_private_key("pkcs8-pem", passphrase="pw").decode()
    assert keys.validate_private_key(pem, "pw").startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the library's
        keys.validate_private_key(pem, "wrong")
    with pytest.raises(ValueError):  # noqa: PT011
        keys.validate_private_key("not a key")


def test_fingerprint_is_openssh_sha256() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    line = key.export_public_key().decode()
    assert keys.fingerprint(line) == key.get_fingerprint("sha256")
    assert keys.fingerprint(line).startswith("SHA256:")
