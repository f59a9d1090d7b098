from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from controlcenter import services
from controlcenter.models import AuditEntry
from controlcenter.roles import Role
from controlcenter.services import users


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks need PostgreSQL (SQLite serialises whole writes); CI runs both",
)
def test_two_administrators_demoting_each_other_leave_one(
    make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_user("first", Role.ADMINISTRATOR), make_user("second", Role.ADMINISTRATOR)
    # Both reach the last-administrator check together (without the fix both pass it).
    barrier = threading.Barrier(2, timeout=2)
    real = users._active_administrators

    def together() -> Any:
        if not getattr(local, "waited", False):
            local.waited = True
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return real()

    local = threading.local()
    monkeypatch.setattr(users, "_active_administrators", together)
    outcomes: dict[str, str] = {}

    def demote(name: str, target: User) -> None:
        try:
            services.user_update(
                user=User.objects.get(pk=target.pk), role=Role.EDITOR, is_active=True
            )
            outcomes[name] = "demoted"
        except ValidationError as error:
            outcomes[name] = str(error.code)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=demote, args=("first", second)),
        threading.Thread(target=demote, args=("second", first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["demoted", "last_administrator"]
    assert services.administrators_exist() is True


def test_administrator_restore_gives_the_role_back_and_audits_it(
    make_user: Callable[..., User],
) -> None:
    user = make_user("former", Role.VIEWER)
    User.objects.filter(pk=user.pk).update(is_active=False)
    restored = users.administrator_restore(username="FORMER", password="a-new-long-password-77")
    restored.refresh_from_db()
    assert (services.user_role(restored), restored.is_active, restored.is_staff) == (
        Role.ADMINISTRATOR,
        True,
        True,
    )
    assert restored.check_password("a-new-long-password-77") is True
    assert list(AuditEntry.objects.order_by("pk").values_list("action", "target"))[-2:] == [
        ("user.update", "former"),
        ("user.password", "former"),
    ]


@pytest.mark.django_db
def test_password_problems_apply_the_validators() -> None:
    assert users.password_problems("a", username="admin") == [
        "このパスワードは短すぎます。最低 8 文字以上必要です。",
        "このパスワードは一般的すぎます。",
    ]
    assert users.password_problems("a-long-and-unusual-password-42", username="admin") == []


def test_user_names_are_unique_regardless_of_case(make_user: Callable[..., User]) -> None:
    make_user("admin", Role.ADMINISTRATOR)
    with pytest.raises(ValidationError) as refused:
        services.user_create(username="Admin", password=None, role=Role.VIEWER)
    assert refused.value.message_dict == {
        "username": ["同じユーザー名 (大文字・小文字の違いを除く) のユーザーがすでに存在します。"]
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="ADMIN")  # the database's own guard: lower(username)
    assert list(User.objects.values_list("username", flat=True)) == ["admin"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_case_duplicates_and_adds_the_index() -> None:
    target = [("controlcenter", "0008_alias_revision")]
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    old = executor.loader.project_state(target).apps.get_model("auth", "User")
    first = old.objects.create(username="Admin")
    second = old.objects.create(username="admin")
    third = old.objects.create(username="ADMIN")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert list(User.objects.order_by("pk").values_list("username", flat=True)) == [
        "Admin",
        f"admin-{second.pk}",
        f"ADMIN-{third.pk}",
    ]
    assert User.objects.get(pk=first.pk).username == "Admin"
    assert list(AuditEntry.objects.order_by("pk").values_list("action", "before", "after")) == [
        ("user.update", {"username": "admin"}, {"username": f"admin-{second.pk}"}),
        ("user.update", {"username": "ADMIN"}, {"username": f"ADMIN-{third.pk}"}),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="aDmIn")
