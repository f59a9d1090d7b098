"""server_settings_save: row lock, validation again under it, only the changed fields saved."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import translation

from aliases import services as alias_services
from controlcenter import services
from controlcenter.forms import ServerSettingsForm
from controlcenter.models import ServerSettings
from relaypolicy.forms import RelayRestrictionForm

pytestmark = pytest.mark.django_db


def _data(server: ServerSettings, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        name: getattr(server, name) for name in ServerSettingsForm.Meta.fields
    }
    return data | changes


def test_a_relay_restriction_save_keeps_a_concurrent_change_of_other_fields() -> None:
    seen = ServerSettings.load()
    form = RelayRestrictionForm(
        data={"max_message_size": "1000", "max_recipients": str(seen.max_recipients)},
        instance=seen,
    )
    assert form.is_valid()
    # meanwhile an administrator changes other fields on 全設定
    ServerSettings.objects.filter(pk=1).update(accounts=7, console_mode_word="XX")

    services.server_settings_save(form=form)

    saved = ServerSettings.objects.get(pk=1)
    assert (saved.max_message_size, saved.accounts, saved.console_mode_word) == (1000, 7, "XX")


def test_only_the_changed_fields_are_written() -> None:
    seen = ServerSettings.load()
    form = ServerSettingsForm(data=_data(seen, mailing_lists=3), instance=seen)
    assert form.is_valid()
    ServerSettings.objects.filter(pk=1).update(max_recipients=42)
    stamp = ServerSettings.objects.get(pk=1).updated_at
    server = services.server_settings_save(form=form)
    assert ServerSettings.objects.get(pk=1).updated_at > stamp
    assert (server.mailing_lists, server.max_recipients) == (3, 42)
    saved = ServerSettings.objects.get(pk=1)
    assert (saved.mailing_lists, saved.max_recipients) == (3, 42)


def test_the_licence_is_checked_again_under_the_lock() -> None:
    seen = ServerSettings.load()
    original = (seen.licence, seen.accounts)
    form = ServerSettingsForm(
        data=_data(seen, licence="50", accounts=45, mailing_lists=5), instance=seen
    )
    assert form.is_valid()
    # aliases added after the form was validated take the remaining seats
    alias_services.domain_create(name="example.co.jp")
    for index in range(3):
        alias_services.alias_create(pattern=f"u{index}@example.co.jp", target=f"u{index}@in.jp")

    with translation.override("en"), pytest.raises(ValidationError):
        services.server_settings_save(form=form)
    with translation.override("en"):
        assert form.non_field_errors() == [
            "The licence allows 50 users, but 53 seats would be used "
            "(3 aliases, 45 accounts, 5 mailing lists)."
        ]
    saved = ServerSettings.objects.get(pk=1)
    assert (saved.licence, saved.accounts) == original


def test_the_settings_page_shows_a_licence_excess_found_under_the_lock(
    administrator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = services.server_settings_save

    def aliases_added_meanwhile(*, form: ServerSettingsForm) -> ServerSettings:
        alias_services.domain_create(name="example.co.jp")
        for index in range(3):
            alias_services.alias_create(pattern=f"u{index}@example.co.jp", target=f"u{index}@in.jp")
        return real(form=form)

    monkeypatch.setattr(services, "server_settings_save", aliases_added_meanwhile)
    seen = ServerSettings.load()
    data = _data(seen, licence="50", accounts=45, mailing_lists=5)
    response = administrator_client.post(
        "/system/settings/", {k: v for k, v in data.items()}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "The licence allows 50 users, but 53 seats would be used "
        "(3 aliases, 45 accounts, 5 mailing lists)."
    ]
    assert ServerSettings.objects.get(pk=1).accounts == seen.accounts
    translation.deactivate()
