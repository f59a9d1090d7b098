"""gateways.errors: every failure of a gateway reaches the administrator in Japanese."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import translation

from gateways import errors, services
from gateways.models import Gateway, GatewayKind
from gateways.transport import ENGLISH, HostKeyUnconfirmed, Unreachable
from jobs.services import JobError
from tests.servers import free_port


@pytest.mark.parametrize("reason", sorted(ENGLISH))
def test_every_transport_reason_is_in_the_catalogue(reason: str) -> None:
    with translation.override("ja"):
        text = errors.describe(reason, where="192.0.2.25:22", detail="x")
    assert text.startswith("192.0.2.25:22")
    assert text != ENGLISH[reason].format(where="192.0.2.25:22", detail="x")
    assert not any(word in text for word in ("the ", "host key", "connection"))


@pytest.mark.parametrize("reason", sorted(errors.SMTP_REASONS))
def test_every_smtp_reason_is_in_the_catalogue(reason: str) -> None:
    with translation.override("ja"):
        text = errors.smtp_message("192.0.2.25:25", reason, "421")
    assert text.startswith("192.0.2.25:25: ")
    assert text.isascii() is False


def test_the_unconfirmed_host_key_reads_in_japanese() -> None:
    error = HostKeyUnconfirmed("192.0.2.25:22", "unconfirmed")
    assert str(error) == "192.0.2.25:22: the host key has not been confirmed yet"  # logs, CLI
    with translation.override("ja"):
        assert errors.transport_message(error) == "192.0.2.25:22: ホスト鍵がまだ確認されていません"


def test_an_unknown_reason_keeps_the_systems_words() -> None:
    assert errors.describe("new", where="h:22", detail="odd") == "h:22: odd"


@pytest.mark.django_db
def test_pulling_logs_before_the_host_key_is_confirmed_fails_in_japanese() -> None:
    gateway = Gateway.objects.create(
        name="本社", kind=GatewayKind.SSH, host="192.0.2.25", username="epost", key_path="/k"
    )
    with translation.override("ja"), pytest.raises(JobError) as caught:
        services.gateway_logs_run(None, gateway_id=gateway.pk)
    assert str(caught.value) == (
        "ログを取り込めませんでした: 192.0.2.25:22: ホスト鍵がまだ確認されていません"
    )


@pytest.mark.django_db
def test_fetching_the_host_key_of_a_closed_port_says_why_in_japanese(
    administrator_client: Client,
) -> None:
    port = free_port()
    gateway = Gateway.objects.create(
        name="本社", kind=GatewayKind.SSH, host="127.0.0.1", port=port, username="epost"
    )
    response = administrator_client.post(
        reverse("gateways:host-key-fetch", args=[gateway.pk]), follow=True
    )
    assert [str(m.message) for m in response.context["messages"]] == [
        f"ホスト鍵を取得できません: 127.0.0.1:{port}: "
        "接続を拒否されました(サービスは起動していますか?)"
    ]


def test_a_refused_connection_is_classified_not_quoted() -> None:
    from gateways.transport import fetch_host_key, run_sync

    port = free_port()
    with pytest.raises(Unreachable) as caught:
        run_sync(fetch_host_key("127.0.0.1", port))
    assert (caught.value.reason, caught.value.where) == ("refused", f"127.0.0.1:{port}")


@pytest.mark.django_db
def test_a_publication_that_cannot_connect_says_why_in_japanese(policy: None, admin: User) -> None:
    import asyncssh
    from django.conf import settings

    from gateways import keys
    from tests.gateways.test_services import publish

    def key() -> asyncssh.SSHKey:
        return asyncssh.generate_private_key("ssh-ed25519")

    port = free_port()
    Gateway.objects.create(
        name="本社", kind=GatewayKind.SSH, host="127.0.0.1", port=port, username="epost",
        key_encrypted=keys.encrypt_private_key(
            key().export_private_key().decode(), secret=settings.SECRET_KEY
        ),
        host_key=key().export_public_key().decode().strip(),
    )  # fmt: skip
    (result,) = publish(admin).latest_results()
    assert result.error == (
        f"接続できません: 127.0.0.1:{port}: 接続を拒否されました(サービスは起動していますか?)"
    )
