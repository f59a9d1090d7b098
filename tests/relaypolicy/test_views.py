from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from pytest_django.asserts import assertContains, assertRedirects

from controlcenter.models import ServerSettings
from relaypolicy import services
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.table import Row, RowKind, Table

pytestmark = pytest.mark.django_db


def _post_data(rows: list[dict[str, str]], **policy: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": "0",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "5000",
        "header_null": "default",
        "header_blank": "false",
        "terminator": "norelay",
        "terminator_pattern": "*.*.*.*",
        "version": str(RelayPolicy.load().version),
    } | policy
    for index, row in enumerate(rows):
        values = {"kind": "rule", "modifier": "default", "ORDER": str(index + 1)} | row
        for key, value in values.items():
            data[f"form-{index}-{key}"] = value
    return data


def _stored() -> list[tuple[str, str, str, str]]:
    return list(RelayRule.objects.values_list("kind", "pattern", "modifier", "comment"))


def test_editor_shows_pinned_header_rows_and_terminator(editor_client: Client) -> None:
    services.relay_table_save(
        table=Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default", comment="LAN"),)),
        version=0,
    )
    response = editor_client.get("/relay/machines/")
    assertContains(response, 'value="192.168.1.0/24"')
    assertContains(response, 'data-testid="header-null"')
    assertContains(response, 'data-testid="terminator"')
    assertContains(response, '<span class="small" data-testid="row-lines">4–5</span>', html=True)


def test_save_replaces_all_rows_in_the_submitted_order(editor_client: Client) -> None:
    data = _post_data(
        [
            {"pattern": "192.168.1.0/24", "comment": "LAN", "ORDER": "2"},
            {"pattern": "192.168.2.10", "modifier": "norelay,2", "ORDER": "1"},
            {"pattern": "10.9.9.9", "DELETE": "on", "ORDER": "3"},
            {"pattern": "", "ORDER": "4"},
        ]
    )
    response = editor_client.post("/relay/machines/", data)
    assertRedirects(response, "/relay/machines/")
    assert _stored() == [
        ("rule", "192.168.2.10", "norelay,2", ""),
        ("rule", "192.168.1.0/24", "default", "LAN"),
    ]
    assert RelayPolicy.load().version == 1


def test_trusted_catch_all_is_refused_with_the_error_on_its_row(editor_client: Client) -> None:
    data = _post_data([{"pattern": "192.168.1.0/24"}, {"pattern": "*.*.*.*", "modifier": "true"}])
    response = editor_client.post("/relay/machines/", data)
    assert response.status_code == 200
    form = response.context["form"]
    # Trusted, and being the first catch-all it is also not a terminator (E013).
    assert [f.code for f in form.row_forms[1].findings if f.level.label == "error"] == [
        "relay.E011",
        "relay.E013",
    ]
    assert [e.code for e in form.row_forms[1].non_field_errors().as_data()] == [
        "relay.E011",
        "relay.E013",
    ]
    assertContains(response, 'value="*.*.*.*"')  # the user's input is kept
    assert _stored() == []


def test_warnings_do_not_block_and_are_announced_after_saving(editor_client: Client) -> None:
    data = _post_data([{"pattern": "10.0.0.0/8", "modifier": "true"}])
    response = editor_client.post("/relay/machines/", data, follow=True)
    assert _stored() == [("rule", "10.0.0.0/8", "true", "")]
    assertContains(response, "relay.W009")


def test_turning_the_terminator_off_in_gateway_mode_is_an_error(editor_client: Client) -> None:
    response = editor_client.post("/relay/machines/", _post_data([], terminator=""))
    assert response.status_code == 200
    assert [f.code for f in response.context["form"].terminator_findings] == []
    assert "relay.E013" in [f.code for f in response.context["form"].findings]
    assert RelayPolicy.load().terminator == "norelay"


def test_terminator_may_be_off_on_a_plain_mail_server(editor_client: Client) -> None:
    ServerSettings.objects.filter(pk=1).update(mode="mailserver")
    response = editor_client.post("/relay/machines/", _post_data([], terminator=""))
    assertRedirects(response, "/relay/machines/")
    assert RelayPolicy.load().terminator == ""


def test_concurrent_save_overwrites_nothing_and_tells_the_user(editor_client: Client) -> None:
    stale = _post_data([{"pattern": "192.168.5.0/24"}])
    services.relay_table_save(
        table=Table(rows=(Row(RowKind.RULE, "10.1.1.1", "default"),)), version=0
    )
    response = editor_client.post("/relay/machines/", stale)
    assert response.status_code == 409
    assertContains(response, "192.168.5.0/24", status_code=409)
    assert _stored() == [("rule", "10.1.1.1", "default", "")]


def test_pattern_with_a_space_is_refused_with_a_field_error(editor_client: Client) -> None:
    response = editor_client.post("/relay/machines/", _post_data([{"pattern": "192.168.1.1 x"}]))
    errors = response.context["form"].rows.forms[0].errors.as_data()
    assert [error.code for error in errors["pattern"]] == ["space"]
    assertContains(response, 'value="192.168.1.1 x"')
    assert _stored() == []


def test_viewer_sees_the_table_but_cannot_save(viewer_client: Client) -> None:
    assert viewer_client.get("/relay/machines/").status_code == 200
    assert viewer_client.post("/relay/machines/", _post_data([])).status_code == 403
    assert viewer_client.post("/relay/", {"max_message_size": "1"}).status_code == 403
    assert viewer_client.get("/relay/machines/import/").status_code == 403


def test_text_view_shows_and_downloads_the_exact_file(editor_client: Client) -> None:
    services.relay_table_save(
        table=Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default"),)), version=0
    )
    expected = (
        "'Generated by Relay Control Center export #1; edit the rules there, not here.\n"
        "#<> default\n#blank false\n192.168.1.0/24 default\n*.*.*.* norelay\n"
    )
    response = editor_client.get("/relay/machines/effect.dat/?download=1")
    assert response.content == expected.encode("ascii")
    assert response["Content-Disposition"] == 'attachment; filename="effect.dat"'
    assertContains(editor_client.get("/relay/machines/effect.dat/"), "192.168.1.0/24 default")


def test_import_previews_then_replaces_the_table(editor_client: Client) -> None:
    text = "#<> default\n#blank false\n'office\n172.16.0.0/16 default\n\t\n* norelay\n"
    response = editor_client.post("/relay/machines/import/", {"text": text})
    preview = response.context["preview"]
    assert [(f.code, f.line) for f in preview.findings if f.level.label == "error"] == []
    assert _stored() == []
    response = editor_client.post(
        "/relay/machines/import/",
        {"confirm": "1", "token": response.context["token"]},
    )
    assertRedirects(response, "/relay/machines/")
    assert _stored() == [("rule", "172.16.0.0/16", "default", "office"), ("verbatim", "", "", "")]
    assert RelayPolicy.load().terminator_pattern == "*"


def test_import_confirmation_is_refused_when_the_table_changed(editor_client: Client) -> None:
    response = editor_client.post("/relay/machines/import/", {"text": "#<> default\n"})
    services.relay_table_save(table=Table(), version=0)
    response = editor_client.post(
        "/relay/machines/import/", {"confirm": "1", "token": response.context["token"]}
    )
    assert response.status_code == 409
    assert response.context["form"].initial == {"text": "#<> default\n"}  # nothing retyped
    assert RelayPolicy.load().header_blank == "#blank false"


def test_import_confirmation_refuses_a_forged_token(editor_client: Client) -> None:
    response = editor_client.post(
        "/relay/machines/import/", {"confirm": "1", "token": "eyJkYXRhIjoiIn0:forged:sig"}
    )
    assert response.status_code == 409
    assert RelayRule.objects.count() == 0


def test_import_refuses_a_file_over_the_limit(editor_client: Client) -> None:
    big = SimpleUploadedFile("effect.dat", b"#" * (1024 * 1024 + 1))
    response = editor_client.post("/relay/machines/import/", {"file": big})
    assert [e.code for e in response.context["form"].errors.as_data()["file"]] == ["too_large"]
    assert "preview" not in response.context


def test_restriction_settings_save(editor_client: Client) -> None:
    response = editor_client.post(
        "/relay/", {"max_message_size": "20971520", "max_recipients": "100"}
    )
    assertRedirects(response, "/relay/")
    server = ServerSettings.load()
    assert (server.max_message_size, server.max_recipients) == (20971520, 100)


def test_restriction_settings_change_is_audited(editor_client: Client) -> None:
    from controlcenter.models import AuditEntry

    editor_client.post("/relay/", {"max_message_size": "1048576", "max_recipients": "0"})
    entry = AuditEntry.objects.order_by("-pk").first()
    assert entry is not None
    assert (entry.action, entry.target, entry.summary) == (
        "settings.change",
        "settings",
        "max_message_size",
    )


def test_a_post_without_the_form_is_refused_with_a_message_not_an_error(
    editor_client: Client,
) -> None:
    response = editor_client.post("/relay/machines/", {})
    assert response.status_code == 200
    assert (
        response.context["form"].rows.non_form_errors().as_data()[0].code
        == "missing_management_form"
    )
    assert RelayPolicy.load().version == 0


def test_rows_are_re_shown_in_the_users_order_when_saving_is_refused(
    editor_client: Client,
) -> None:
    data = _post_data(
        [
            {"pattern": "192.168.1.0/24", "ORDER": "2"},
            {"pattern": "*.*.*.*", "modifier": "true", "ORDER": "1"},
        ]
    )
    response = editor_client.post("/relay/machines/", data)
    shown = [form["pattern"].value() for form in response.context["form"].display_forms]
    assert shown == ["*.*.*.*", "192.168.1.0/24"]


def test_a_smuggled_line_break_is_refused_and_nothing_is_stored(editor_client: Client) -> None:
    data = _post_data([{"kind": "comment", "text": " x\n*.*.*.* true", "comment": ""}])
    response = editor_client.post("/relay/machines/", data)
    assert response.status_code == 200
    assert RelayRule.objects.count() == 0
    assert RelayPolicy.load().version == 0
