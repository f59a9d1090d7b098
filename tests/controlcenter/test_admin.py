"""The Django admin is read-only: every change goes through the screens and their services."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.db import models
from django.test import Client

from aliases import services as alias_services
from controlcenter.models import AuditEntry, ServerSettings
from controlcenter.roles import Role
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.services import relay_table_save
from relaypolicy.table import Row, RowKind, Table
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(make_user: Callable[..., User]) -> dict[str, models.Model]:
    """One object of every model the admin shows, by admin URL prefix."""
    relay_table_save(
        table=Table(rows=(Row(RowKind.RULE, pattern="192.168.1.0/24", modifier="default"),)),
        version=RelayPolicy.load().version,
    )
    domain = alias_services.domain_create(name="example.co.jp")
    alias = alias_services.alias_create(pattern="a@example.co.jp", target="a@inner.jp").alias
    return {
        "auth/user": make_user(username="viewer", role=Role.VIEWER),
        "auth/group": Group.objects.get(name=Role.EDITOR.value),
        "controlcenter/serversettings": ServerSettings.load(),
        "relaypolicy/relayrule": RelayRule.objects.get(),
        "relaypolicy/relaypolicy": RelayPolicy.load(),
        "aliases/localdomain": domain,
        "aliases/alias": alias,
    }


def _state(obj: models.Model) -> dict[str, object]:
    fresh = type(obj).objects.get(pk=obj.pk)  # type: ignore[attr-defined]
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields}


@pytest.mark.parametrize(
    "prefix",
    [
        "auth/user",
        "auth/group",
        "controlcenter/serversettings",
        "relaypolicy/relayrule",
        "relaypolicy/relaypolicy",
        "aliases/localdomain",
        "aliases/alias",
    ],
)
def test_administrator_cannot_add_change_or_delete_through_the_admin(
    objects: dict[str, models.Model], administrator_client: Client, prefix: str
) -> None:
    obj = objects[prefix]
    before = _state(obj)
    count = type(obj).objects.count()  # type: ignore[attr-defined]
    base = f"/admin/{prefix}/"
    assert administrator_client.get(base).status_code == 200
    assert administrator_client.get(f"{base}{obj.pk}/change/").status_code == 200
    posted = {"name": "x", "pattern": "x@example.co.jp", "mode": "mailserver", "is_active": ""}
    assert administrator_client.post(f"{base}{obj.pk}/change/", posted).status_code == 403
    assert administrator_client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert administrator_client.post(f"{base}add/", posted).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    administrator_client.post(base, bulk)
    assert _state(obj) == before
    assert type(obj).objects.count() == count  # type: ignore[attr-defined]


def test_admin_lists_are_searchable(
    objects: dict[str, models.Model], administrator_client: Client
) -> None:
    response = administrator_client.get("/admin/relaypolicy/relayrule/", {"q": "192.168"})
    assert [row.pk for row in response.context["cl"].result_list] == [
        objects["relaypolicy/relayrule"].pk
    ]
    assert response.context["cl"].list_display == [
        "position",
        "kind",
        "pattern",
        "modifier",
        "comment",
        "text",
    ]
    response = administrator_client.get("/admin/aliases/alias/", {"q": "a@example"})
    assert [row.pk for row in response.context["cl"].result_list] == [objects["aliases/alias"].pk]
    response = administrator_client.get("/admin/auth/user/", {"q": "viewer"})
    assert [row.username for row in response.context["cl"].result_list] == ["viewer"]


def test_the_user_admin_does_not_show_password_hashes(
    objects: dict[str, models.Model], administrator_client: Client
) -> None:
    response = administrator_client.get(f"/admin/auth/user/{objects['auth/user'].pk}/change/")
    assert b"md5$" not in response.content
    assert b"pbkdf2" not in response.content


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, None])
def test_the_admin_refuses_users_without_access_with_the_403_page(
    role_client: Callable[[Role | None], Client], role: Role | None
) -> None:
    client = role_client(role)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain == [("/admin/login/?next=/admin/", 302)]
    assert response.status_code == 403


def test_the_admin_login_sends_visitors_to_the_login_page(client: Client) -> None:
    response = client.get("/admin/")
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/")
    response = client.get("/admin/login/?next=/admin/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/admin/")


def test_the_admin_password_change_goes_to_the_audited_page(
    make_user: Callable[..., User],
) -> None:
    admin = make_user(username="boss", role=Role.ADMINISTRATOR)
    client = Client()
    client.force_login(admin)
    target = f"/system/users/{admin.pk}/password/"
    posted = client.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "unaudited-password-987",
            "new_password2": "unaudited-password-987",
        },
    )
    assert (posted.status_code, posted["Location"]) == (302, target)
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD) is True
    response = client.post(
        target, {"password1": "audited-password-987", "password2": "audited-password-987"}
    )
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.check_password("audited-password-987") is True
    assert AuditEntry.objects.filter(action="user.password", target="boss").count() == 1
    assert client.get("/system/").status_code == 200  # still logged in


def test_the_admin_password_change_refuses_users_without_access(
    role_client: Callable[[Role | None], Client],
) -> None:
    assert role_client(Role.EDITOR).get("/admin/password_change/").status_code == 403
