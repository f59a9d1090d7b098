from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains, assertTemplateUsed

from controlcenter.roles import Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _login(client: Client, password: str, address: str = "192.168.1.20") -> Any:
    return client.post(
        "/accounts/login/",
        {"username": "editor", "password": password},
        REMOTE_ADDR=address,
    )


def test_login_page_is_japanese_by_default(client: Client) -> None:
    response = client.get("/accounts/login/")
    assertContains(response, '<html lang="ja">')
    assertContains(response, "ログイン")


def test_successful_login_lands_on_the_dashboard(
    client: Client, make_user: Callable[..., AbstractUser]
) -> None:
    make_user(role=Role.EDITOR)
    response = _login(client, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_locks_after_the_configured_failures_and_unlocks_after_cool_off(
    client: Client, make_user: Callable[..., AbstractUser]
) -> None:
    make_user(role=Role.EDITOR)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "wrong").status_code == 200
    locked = _login(client, "wrong")
    assert locked.status_code == 429
    assertTemplateUsed(locked, "registration/locked_out.html")
    # Even the right password is refused while locked.
    assert _login(client, PASSWORD).status_code == 429
    # The lock is per user name and address: another address may still try.
    assert _login(Client(), PASSWORD, address="192.168.1.21").status_code == 302

    # Move the failures back past the cool-off instead of sleeping.
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time
        - settings.AXES_COOLOFF_TIME
        - timedelta(seconds=1)
    )
    assert _login(client, PASSWORD).status_code == 302


def test_lockout_page_explains_how_long_and_whom_to_ask(
    client: Client, make_user: Callable[..., AbstractUser]
) -> None:
    make_user(role=Role.EDITOR)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _login(client, "wrong")
    assertContains(response, "15", status_code=429)
    assertContains(response, "管理者にロックの解除を依頼してください", status_code=429)
    # The visitor is anonymous: the server's unlock command is not theirs to see.
    assertNotContains(response, "axes_reset", status_code=429)
    assertNotContains(response, "manage.py", status_code=429)


def test_forwarded_for_is_ignored_from_untrusted_peers(
    client: Client, make_user: Callable[..., AbstractUser]
) -> None:
    make_user(role=Role.EDITOR)
    for n in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "editor", "password": "wrong"},
            REMOTE_ADDR="192.168.1.20",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["192.168.1.20"]


def test_session_expires_after_a_working_day() -> None:
    assert settings.SESSION_COOKIE_AGE == 9 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
