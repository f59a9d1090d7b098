"""Real servers on loopback for the gateway tests: OpenSSH's sshd and Postfix.

Each starts on 127.0.0.1 on a free port, in its own temporary folder, with throwaway keys, and
is stopped (by its own process id) when the ``with`` block ends. :func:`require` skips a test
with the reason when the binary is missing on a laptop, and fails it in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

SSHD = Path("/usr/sbin/sshd")
POSTFIX = Path("/usr/sbin/postfix")
POSTFIX_MASTER = Path("/usr/lib/postfix/sbin/master")

STUB_EPSTMAN = """#!/bin/sh
# Stub of the E-Post console tool: records its arguments, one call per line.
printf '%s\\n' "$*" >> "$(dirname "$0")/epstman.calls"
if [ -n "${EPSTMAN_FAIL:-}" ] || [ -e "$(dirname "$0")/epstman.fail" ]; then
  echo "epstman: licence check failed" >&2
  exit 3
fi
echo "registered $3"
"""


def require(binary: Path, package: str) -> None:
    if binary.exists():
        return
    reason = f"{binary} is missing: install Debian's {package} package to run this test"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_banner(
    port: int, prefix: bytes, process: subprocess.Popen[bytes], timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(prefix):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server on port {port} after {timeout}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class SshServer:
    port: int
    host_key: str  # the server's public key line
    client_key: str  # OpenSSH private key text authorised to log in
    username: str
    root: Path
    program_folder: Path
    work_folder: Path
    host_key_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def calls(self) -> list[str]:
        path = self.program_folder / "epstman.calls"
        return path.read_text().splitlines() if path.exists() else []


def _keypair(path: Path) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    path.chmod(0o600)
    return key


@contextlib.contextmanager
def ssh_server(
    base: Path, *, client_key: str | None = None, port: int | None = None
) -> Iterator[SshServer]:
    """sshd on 127.0.0.1 with a fresh host key; ``client_key`` (or a new one) may log in."""
    require(SSHD, "openssh-server")
    base.mkdir(parents=True, exist_ok=True)
    host = _keypair(base / "host_key")
    if client_key is None:
        client_key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    client = asyncssh.import_private_key(client_key)
    authorized = base / "authorized_keys"
    authorized.write_bytes(client.export_public_key())
    authorized.chmod(0o600)
    root = base / "root"
    program = root / "usr/local/mta/bin"
    work = root / "var/spool/epms"
    program.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    stub = program / "epstman"
    stub.write_text(STUB_EPSTMAN)
    stub.chmod(0o755)
    user = pwd.getpwuid(os.getuid()).pw_name
    port = port or free_port()
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {base / 'host_key'}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {base / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "UsePAM no",
                "StrictModes no",
                "MaxStartups 100:30:200",
                "MaxSessions 50",
                "LogLevel ERROR",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    if os.getuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(base / "sshd.log", "wb"),  # noqa: SIM115 - lives as long as the server
        start_new_session=True,
    )
    server = SshServer(
        port,
        host.export_public_key().decode().strip(),
        client_key,
        user,
        root,
        program,
        work,
        base / "host_key",
        process,
    )
    try:
        _wait_for_banner(port, b"SSH-", process)
        yield server
    finally:
        _stop(process)


def restart_with_new_host_key(server: SshServer) -> str:
    """Give ``server`` a new host key (as a reinstalled gateway would); its public line."""
    assert server.process is not None
    host = _keypair(server.host_key_path)
    # sshd reads its host keys per connection (it re-executes itself): no restart needed.
    return host.export_public_key().decode().strip()


# --- Postfix ---------------------------------------------------------------------------------


def _postfix_tls(config: Path) -> list[str]:
    """A self-signed certificate for 127.0.0.1 and the main.cf lines that offer STARTTLS."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway.example.jp")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = config / "tls.key", config / "tls.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return [
        f"smtpd_tls_cert_file = {cert_file}",
        f"smtpd_tls_key_file = {key_file}",
        "smtpd_tls_security_level = may",
        "smtpd_tls_loglevel = 1",
    ]


@dataclass
class PostfixServer:
    port: int
    config: Path
    log: Path
    open_relay: bool

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def postfix_server(
    *, open_relay: bool, domain: str = "example.jp", tls: bool = False
) -> Iterator[PostfixServer]:
    """Postfix's smtpd on 127.0.0.1 with its own configuration, queue and log (no delivery).

    Closed: only ``mydestination`` is accepted from 127.0.0.1. Open: ``mynetworks`` is
    0.0.0.0/0, so everything is relayed. ``debug_peer_list`` logs every command received.
    With ``tls`` it offers STARTTLS with a throwaway self-signed certificate.
    """
    require(POSTFIX, "postfix")
    if os.getuid() != 0:
        reason = "Postfix's master must be started as root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    # Postfix's own processes run as the postfix user: every folder on the way must be
    # traversable by it, which pytest's 0700 temporary folders are not.
    base = Path(tempfile.mkdtemp(prefix="rcc-postfix-"))
    base.chmod(0o755)
    config = base / "etc"
    queue = base / "queue"
    data = base / "data"
    config.mkdir(exist_ok=True)
    data.mkdir(exist_ok=True)
    queue.mkdir(exist_ok=True)
    shutil.chown(data, "postfix", "postfix")
    port = free_port()
    log = base / "postfix.log"
    name = f"rcc-{port}"
    mynetworks = "0.0.0.0/0 [::]/0" if open_relay else "192.0.2.0/24"
    tls_lines = _postfix_tls(config) if tls else []
    (config / "main.cf").write_text(
        "\n".join(
            [
                "compatibility_level = 3.6",
                f"queue_directory = {queue}",
                f"data_directory = {data}",
                "mail_owner = postfix",
                "setgid_group = postdrop",
                f"syslog_name = {name}",
                f"maillog_file = {log}",
                f"maillog_file_prefixes = {base}",
                "inet_interfaces = loopback-only",
                "inet_protocols = ipv4",
                "myhostname = gateway.example.jp",
                f"mydestination = {domain}",
                "local_recipient_maps =",
                f"mynetworks = {mynetworks}",
                "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
                "smtpd_recipient_restrictions =",
                "smtpd_soft_error_limit = 1000",
                "smtpd_hard_error_limit = 1000",
                "smtpd_error_sleep_time = 0",
                "smtpd_banner = $myhostname ESMTP",
                "debug_peer_list = 127.0.0.1",
                "debug_peer_level = 1",
                "disable_dns_lookups = yes",
                "smtp_dns_support_level = disabled",
                *tls_lines,
                "",
            ]
        )
    )
    (config / "master.cf").write_text(
        "\n".join(
            [
                f"127.0.0.1:{port} inet n - n - 20 smtpd",
                "postlog unix-dgram n - n - 1 postlogd",
                "cleanup unix n - n - 0 cleanup",
                "qmgr unix n - n 300 1 qmgr",
                "rewrite unix - - n - - trivial-rewrite",
                "bounce unix - - n - 0 bounce",
                "defer unix - - n - 0 bounce",
                "trace unix - - n - 0 bounce",
                "verify unix - - n - 1 verify",
                "flush unix n - n 1000? 0 flush",
                "proxymap unix - - n - - proxymap",
                "anvil unix - - n - 1 anvil",
                "scache unix - - n - 1 scache",
                "tlsmgr unix - - n 1000? 1 tlsmgr",
                "",
            ]
        )
    )
    env = {**os.environ, "MAIL_CONFIG": str(config)}
    # `postfix check` makes the queue folders; then the master itself, in the foreground
    # (`postfix start-fg` would run more start-up scripts, seconds on a busy machine).
    subprocess.run(
        [str(POSTFIX), "-c", str(config), "check"], env=env, check=False, capture_output=True
    )
    process = subprocess.Popen(
        [str(POSTFIX_MASTER), "-d", "-c", str(config)],
        env=env,
        stdout=open(base / "master.out", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = PostfixServer(port, config, log, open_relay)
    try:
        _wait_for_banner(port, b"220", process, timeout=30)
        yield server
    finally:
        subprocess.run(
            [str(POSTFIX), "-c", str(config), "stop"], env=env, check=False, capture_output=True
        )
        _stop(process)
        if os.environ.get("RCC_KEEP") != "1":
            shutil.rmtree(base, ignore_errors=True)
