from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from aliases.models import Alias, LocalDomain

pytestmark = pytest.mark.django_db


def test_domain_names_must_be_lower_case() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        LocalDomain.objects.create(name="Example.jp")


def test_alias_key_is_unique_and_domain_is_protected() -> None:
    domain = LocalDomain.objects.create(name="example.jp")
    alias = Alias.objects.create(
        position=1,
        pattern="A@example.jp",
        key="a@example.jp",
        target="t@x.jp",
        option="0",
        domain=domain,
    )
    assert alias.target_text == "t@x.jp,0"
    assert alias.as_entry().key == "a@example.jp"
    assert str(alias) == "A@example.jp -> t@x.jp,0"
    with pytest.raises(IntegrityError), transaction.atomic():
        Alias.objects.create(
            position=2, pattern="a@example.jp", key="a@example.jp", target="t@x.jp", domain=domain
        )
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        domain.delete()


def test_role_groups_get_alias_permissions() -> None:
    from django.contrib.auth.models import Group

    def perms(role: str) -> set[str]:
        group = Group.objects.get(name=role)
        return {p.codename for p in group.permissions.filter(content_type__app_label="aliases")}

    assert perms("viewer") == {"view_alias", "view_localdomain", "view_aliasupload"}
    assert {"add_alias", "change_alias", "delete_alias", "add_localdomain"} <= perms("editor")
