"""反映先 screens: who may see and change what, the forms, the host-key confirmation."""

from __future__ import annotations

from collections.abc import Callable

import asyncssh
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from controlcenter.roles import Role
from gateways.models import Gateway, GatewayKind, Publication
from tests.servers import SshServer

pytestmark = pytest.mark.django_db

KEY = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()


def _form(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "primary",
        "kind": "ssh",
        "enabled": "on",
        "host": "127.0.0.1",
        "port": 2222,
        "username": "root",
        "private_key": KEY,
        "passphrase": "",
        "key_path": "",
        "program_folder": "/usr/local/mta/bin",
        "work_folder": "/var/spool/epms",
        "smtp_port": 25,
    }
    data.update(changes)
    return data


def test_everyone_with_a_role_reads_the_list_and_only_administrators_change(
    role_client: Callable[[Role | None], Client],
) -> None:
    viewer = role_client(Role.VIEWER)
    response = viewer.get(reverse("gateways:gateway-list"))
    assertContains(response, "反映先")
    assertNotContains(response, reverse("gateways:gateway-add"))
    assert viewer.get(reverse("gateways:gateway-add")).status_code == 403
    assert viewer.post(reverse("gateways:publish")).status_code == 403
    assert role_client(Role.EDITOR).post(reverse("gateways:check-start")).status_code == 403
    assert role_client(None).get(reverse("gateways:gateway-list")).status_code == 403


def test_adding_a_gateway_stores_the_key_encrypted_and_never_shows_it(
    administrator_client: Client,
) -> None:
    response = administrator_client.post(reverse("gateways:gateway-add"), _form())
    gateway = Gateway.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("gateways:gateway-detail", args=[gateway.pk])
    assert gateway.key_encrypted
    assert "PRIVATE KEY" not in gateway.key_encrypted
    page = administrator_client.get(reverse("gateways:gateway-edit", args=[gateway.pk]))
    assertNotContains(page, gateway.key_encrypted)
    assertNotContains(page, KEY.splitlines()[1])
    detail = administrator_client.get(reverse("gateways:gateway-detail", args=[gateway.pk]))
    assertContains(detail, "暗号化して保存")
    # Saving again without a key keeps the stored one.
    administrator_client.post(
        reverse("gateways:gateway-edit", args=[gateway.pk]), _form(private_key="")
    )
    gateway.refresh_from_db()
    assert gateway.key_encrypted


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"host": ""}, "host"),
        ({"host": "root@gw"}, "host"),
        ({"username": ""}, "username"),
        ({"private_key": "nonsense"}, "private_key"),
        ({"private_key": ""}, "private_key"),
        ({"program_folder": "usr/local"}, "program_folder"),
    ],
)
def test_gateway_form_names_the_bad_field(
    administrator_client: Client, changes: dict[str, object], field: str
) -> None:
    response = administrator_client.post(reverse("gateways:gateway-add"), _form(**changes))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Gateway.objects.exists()


def test_a_local_gateway_needs_no_host(administrator_client: Client) -> None:
    response = administrator_client.post(
        reverse("gateways:gateway-add"),
        _form(name="here", kind="local", host="", username="", private_key=""),
    )
    assert response.status_code == 302
    assert Gateway.objects.get().kind == GatewayKind.LOCAL
    again = administrator_client.post(
        reverse("gateways:gateway-add"),
        _form(name="here too", kind="local", host="", username="", private_key=""),
    )
    assert again.context["form"].errors["kind"] == [
        "このマシンのフォルダはすでに反映先として登録されています。"
    ]


def test_fetching_and_confirming_the_host_key(
    administrator_client: Client, sshd: SshServer
) -> None:
    administrator_client.post(
        reverse("gateways:gateway-add"), _form(port=sshd.port, private_key=sshd.client_key)
    )
    gateway = Gateway.objects.get()
    administrator_client.post(reverse("gateways:host-key-fetch", args=[gateway.pk]))
    gateway.refresh_from_db()
    fingerprint = asyncssh.import_public_key(sshd.host_key).get_fingerprint()
    assert gateway.offered_fingerprint == fingerprint
    page = administrator_client.get(reverse("gateways:gateway-detail", args=[gateway.pk]))
    assertContains(page, fingerprint)
    administrator_client.post(
        reverse("gateways:host-key-confirm", args=[gateway.pk]), {"fingerprint": fingerprint}
    )
    gateway.refresh_from_db()
    assert (gateway.host_key, gateway.offered_host_key) == (sshd.host_key, "")


def test_changing_the_host_forgets_the_pinned_key(administrator_client: Client) -> None:
    administrator_client.post(reverse("gateways:gateway-add"), _form())
    Gateway.objects.update(host_key="ssh-ed25519 AAAA", host_key_fingerprint="SHA256:x")
    gateway = Gateway.objects.get()
    administrator_client.post(
        reverse("gateways:gateway-edit", args=[gateway.pk]), _form(host="127.0.0.2")
    )
    gateway.refresh_from_db()
    assert (gateway.host, gateway.host_key, gateway.host_key_fingerprint) == ("127.0.0.2", "", "")


def test_publishing_without_gateways_says_so(administrator_client: Client, policy: None) -> None:
    response = administrator_client.post(reverse("gateways:publish"), follow=True)
    assertContains(response, "有効な反映先がありません")
    assert not Publication.objects.exists()


def test_the_export_history_links_to_the_result_on_each_gateway(
    administrator_client: Client, policy: None, sshd: SshServer
) -> None:
    from gateways import keys, services
    from jobs.services import job_run

    Gateway.objects.create(
        name="gw1",
        kind=GatewayKind.SSH,
        host="127.0.0.1",
        port=sshd.port,
        username=sshd.username,
        key_encrypted=keys.encrypt_private_key(sshd.client_key, secret=settings.SECRET_KEY),
        program_folder=str(sshd.program_folder),
        host_key=sshd.host_key,
    )
    publication = services.publication_start(user=None)
    job_run(str(publication.job_id))
    publication.refresh_from_db()
    assert publication.export is not None
    page = administrator_client.get(
        reverse("controlcenter:export-detail", args=[publication.export.pk])
    )
    assertContains(page, reverse("gateways:publication-detail", args=[publication.pk]))
    detail = administrator_client.get(reverse("gateways:publication-detail", args=[publication.pk]))
    assertContains(detail, 'data-status="succeeded"')
    assertContains(detail, "ハッシュが一致しました")


def test_pulling_logs_starts_a_job_and_a_viewer_may_not(
    administrator_client: Client, viewer_client: Client, policy: None
) -> None:
    gateway = Gateway.objects.create(name="gw", kind=GatewayKind.SSH, host="127.0.0.1")
    url = reverse("gateways:logs-pull", args=[gateway.pk])
    assert viewer_client.post(url).status_code == 403
    response = administrator_client.post(url)
    from jobs.models import Job

    job = Job.objects.get(kind="gateways.logs")
    assert response["Location"] == reverse("jobs:detail", args=[job.pk])
    assert job.next_url == reverse("maillogs:job-result", args=[job.pk])
    page = administrator_client.get(reverse("gateways:gateway-detail", args=[gateway.pk]))
    assertContains(page, "新しいログを SFTP で取り込む")
