from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from controlcenter.roles import Role
from controlcenter.services.demo import demo_load
from gateways import keys
from gateways.models import Gateway, GatewayKind
from tests.servers import SshServer, ssh_server


@pytest.fixture
def policy(db: None, tmp_path: Path, settings: Any) -> None:
    """The demo company's policy (no errors), and this machine's export folder in tmp_path."""
    settings.CC_EXPORT_DIR = tmp_path / "export"
    demo_load()


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user(username="admin", role=Role.ADMINISTRATOR)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    with ssh_server(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def make_gateway(db: None) -> Callable[..., Gateway]:
    def make(
        server: SshServer | None = None,
        *,
        name: str = "gw1",
        pinned: bool = True,
        port: int | None = None,
        host_key: str | None = None,
    ) -> Gateway:
        if server is None:
            return Gateway.objects.create(name=name, kind=GatewayKind.LOCAL)
        host_key = server.host_key if host_key is None else host_key
        return Gateway.objects.create(
            name=name,
            kind=GatewayKind.SSH,
            host="127.0.0.1",
            port=port or server.port,
            username=server.username,
            key_encrypted=keys.encrypt_private_key(server.client_key, secret=settings.SECRET_KEY),
            program_folder=str(server.program_folder),
            work_folder=str(server.work_folder),
            host_key=host_key if pinned else "",
            host_key_fingerprint=keys.fingerprint(host_key) if pinned else "",
        )

    return make
