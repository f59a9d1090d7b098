from __future__ import annotations

import threading
from io import StringIO
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from pytest_django.asserts import assertContains, assertRedirects

from controlcenter.models import ServerSettings
from controlcenter.roles import Role
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
    # The first rule is No. 1 of the list, whatever lines the banner and header take.
    assertContains(response, '<span class="row-no">1</span>', html=True)
    assertContains(response, '<span id="line-4"></span><span id="line-5"></span>')
    assertContains(response, "(4–5 行目)")


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
    # The count is of the file's lines, as the numbers beside them (6 here), not of the rows.
    assertContains(response, "プレビュー: 6 行")
    assertContains(response, "(既定の行と最終行の間に入る行 2 件)")
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


BAD_FILES = {
    "cr_only": (
        b"#<> default\r#blank false\r192.168.1.0/24 default\r*.*.*.* norelay\r",
        "relay.E041",
        1,
    ),
    "cr_mid_line": (b"#<> default\n192.168.1.0/24 default\r*.*.*.* true\n", "relay.E040", 2),
    "binary": (bytes(range(256)) * 4, "relay.E042", 1),
    "utf16": ("#<> default\r\n*.*.*.* norelay\r\n".encode("utf-16"), "relay.E042", 1),
    "nul": (b"#<> default\n10.0.0.1\x00 default\n", "relay.E040", 2),
    "vt_in_header": (b"#<> default\x0b*.*.*.* true\n", "relay.E040", 1),
    "tab_in_modifier": (b"#<> default\t*.*.*.* true\n", "relay.E040", 1),
    "long_line": (b"'" + b"x" * 300 + b"\n", "relay.E009", 1),
    "long_modifier": (b"10.0.0.1 " + b"m" * 33 + b"\n", "relay.E044", 1),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_import_page_reports_bad_input_on_its_line_and_offers_no_confirmation(
    editor_client: Client, name: str
) -> None:
    data, code, line = BAD_FILES[name]
    response = editor_client.post(
        "/relay/machines/import/", {"file": SimpleUploadedFile("effect.dat", data)}
    )
    assert response.status_code == 200
    preview = response.context["preview"]
    assert (code, line) in [(f.code, f.line) for f in preview.blocking]
    assert response.context["token"] == ""
    assertContains(response, 'data-testid="import-refused"')
    assert 'name="confirm"' not in response.content.decode()
    assert _stored() == []


def test_a_refused_file_cannot_be_confirmed_with_a_token_made_for_it(editor_client: Client) -> None:
    preview = services.relay_import_preview(data=b"#<> default\nbroken line\n")
    token = services.relay_import_token(preview)
    response = editor_client.post("/relay/machines/import/", {"confirm": "1", "token": token})
    assert response.status_code == 200
    assert [(f.code, f.line) for f in response.context["preview"].blocking] == [("relay.E001", 2)]
    assert (_stored(), RelayPolicy.load().version) == ([], 0)


def test_mixed_line_endings_are_read_as_lines_and_noted(editor_client: Client) -> None:
    data = b"#<> default\n#blank false\r\n192.168.1.0/24 default\r\n*.*.*.* norelay\n"
    response = editor_client.post(
        "/relay/machines/import/", {"file": SimpleUploadedFile("effect.dat", data)}
    )
    preview = response.context["preview"]
    assert [(f.code, f.line) for f in preview.findings] == [("relay.I104", 2)]
    editor_client.post(
        "/relay/machines/import/", {"confirm": "1", "token": response.context["token"]}
    )
    assert _stored() == [("rule", "192.168.1.0/24", "default", "")]


def test_pasted_japanese_is_taken_as_typed_not_decoded_again(editor_client: Client) -> None:
    text = "#<> default\n#blank false\n'本社LAN\n192.168.1.0/24 default\n*.*.*.* norelay\n"
    response = editor_client.post("/relay/machines/import/", {"text": text})
    preview = response.context["preview"]
    assert preview.lines[2] == "'本社LAN"
    assert "relay.W019" not in [f.code for f in preview.findings]
    editor_client.post(
        "/relay/machines/import/", {"confirm": "1", "token": response.context["token"]}
    )
    assert _stored() == [("rule", "192.168.1.0/24", "default", "本社LAN")]


def test_an_open_relay_file_is_imported_with_the_risk_named_and_publishing_blocked(
    editor_client: Client,
) -> None:
    text = "#<> default\n#blank false\n192.168.1.0/24 default\n"  # no final norelay line
    response = editor_client.post("/relay/machines/import/", {"text": text})
    preview = response.context["preview"]
    assert [(f.code, f.line) for f in preview.risks] == [("relay.E013", None)]
    assertContains(response, 'data-testid="import-risks"')
    response = editor_client.post(
        "/relay/machines/import/", {"confirm": "1", "token": response.context["token"]}, follow=True
    )
    assert _stored() == [("rule", "192.168.1.0/24", "default", "")]
    assert (
        "これはサーバーの現在の設定です。赤で示したエラーを直すまで、設定の反映はできません。"
        in [str(m) for m in response.context["messages"]]
    )
    dashboard = editor_client.get("/")
    assert [f.code for f in dashboard.context["findings"] if f.is_error] == ["relay.E013"]


def test_an_imported_risk_does_not_block_other_edits_but_a_new_risk_does(
    editor_client: Client,
) -> None:
    services.relay_rules_import(
        data=b"#<> default\n#blank false\n192.168.1.0/24 default\n", replace=True
    )
    data = _post_data([{"pattern": "192.168.1.0/24", "comment": "LAN"}], terminator="")
    response = editor_client.post("/relay/machines/", data, follow=True)
    assertRedirects(response, "/relay/machines/")
    assert _stored() == [("rule", "192.168.1.0/24", "default", "LAN")]
    assert "この保存の前からあったエラーが 1 件残っています。直すまで設定の反映はできません。" in [
        str(m) for m in response.context["messages"]
    ]
    data = _post_data(
        [{"pattern": "192.168.1.0/24"}, {"pattern": "*.*.*.*", "modifier": "true"}],
        terminator="",
    )
    response = editor_client.post("/relay/machines/", data)
    assert response.status_code == 200
    assert "relay.E011" in [f.code for f in response.context["form"].findings]
    assert _stored() == [("rule", "192.168.1.0/24", "default", "LAN")]


def test_a_non_ascii_comment_is_refused_at_save_and_says_why(editor_client: Client) -> None:
    data = _post_data([{"pattern": "192.168.1.0/24", "comment": "本社LAN"}])
    response = editor_client.post("/relay/machines/", data)
    assert response.status_code == 200
    assert [(f.code, f.line) for f in response.context["form"].findings if f.is_error] == [
        ("relay.E046", 4)
    ]
    assert _stored() == []


def test_an_imported_cp932_comment_round_trips_to_the_same_bytes(editor_client: Client) -> None:
    services.relay_rules_import(
        data=b"#<> default\r\n#blank false\r\n'\x96{\x8e\xd0LAN\r\n192.168.1.0/24 default\r\n"
        b"*.*.*.* norelay\r\n",
        replace=True,
    )
    # Saving the table unchanged keeps the imported comment (it is not a new one).
    table, version = services.relay_table_snapshot()
    services.relay_table_save(table=table, version=version)
    body = editor_client.get("/relay/machines/effect.dat/?download=1").content
    assert body.splitlines()[3:5] == [b"'\x96{\x8e\xd0LAN", b"192.168.1.0/24 default"]
    assertContains(editor_client.get("/relay/machines/effect.dat/"), "&#x27;本社LAN")


@pytest.mark.parametrize("value", ["default\x0b*.*.*.* true", "default\t*.*.*.* true",
                                   "default\x0c*.*.*.* true", "default\x1c*.*.*.* true",
                                   "default\n*.*.*.* true", "default\r*.*.*.* true",
                                   "default\x00*.*.*.* true"])  # fmt: skip
def test_a_header_field_cannot_smuggle_a_second_line(editor_client: Client, value: str) -> None:
    for extra in ({}, {"header_null_text": f"#<> {value}"}):
        data = _post_data([{"pattern": "192.168.1.0/24"}], header_null=value, **extra)
        response = editor_client.post("/relay/machines/", data)
        assert response.status_code == 200
        assert _stored() == []
        assert RelayPolicy.load().header_null == "#<> default"


def test_every_stored_line_is_checked_by_the_service_too() -> None:
    table = Table(header=("#<> default\x0b*.*.*.* true", "#blank false"))
    with pytest.raises(services.RelayTableRefused) as refused:
        services.relay_table_save(table=table, version=0)
    assert ("relay.E040", 2) in [(f.code, f.line) for f in refused.value.refused]
    assert RelayPolicy.load().header_null == "#<> default"


# --- one consistent snapshot (issue 13, item 1) ------------------------------------------------


def _marked(marker: str) -> Table:
    return Table(rows=(Row(RowKind.RULE, "192.168.1.0/24", "default", comment=marker),))


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason=(
        "SQLite: the page's read transaction begins IMMEDIATE (settings), so no writer can "
        "commit between its two reads; the in-memory test database's shared cache fails a "
        "waiting writer at once (SQLITE_LOCKED) instead of letting it wait. CI runs this on "
        "PostgreSQL."
    ),
)
@pytest.mark.django_db(transaction=True)
def test_the_editor_page_never_carries_a_version_newer_than_its_rows(
    role_client: Any,
) -> None:
    """A save that commits between the page's read of the rows and its read of the version
    must not give the page the new version: a save from that page would pass the conflict
    check and undo the other save (a deleted rule reappearing)."""
    services.relay_table_save(table=_marked("v1"), version=0)
    client = role_client(Role.EDITOR)
    rows_read, saved = threading.Event(), threading.Event()
    pages: list[Any] = []
    errors: list[BaseException] = []

    def hook(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        first = not rows_read.is_set()
        if first and "relaypolicy_relayrule" in sql and sql.lstrip().upper().startswith("SELECT"):
            rows_read.set()
            # Give the other editor's save every chance to commit in between (it cannot
            # while the page holds its snapshot, so this waits the whole second then).
            saved.wait(timeout=1.0)
        return result

    def load_page() -> None:
        try:
            with connection.execute_wrapper(hook):
                pages.append(client.get("/relay/machines/"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    def other_editor_saves() -> None:
        try:
            assert rows_read.wait(timeout=10)
            services.relay_table_save(table=_marked("v2"), version=1)
            saved.set()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=load_page), threading.Thread(target=other_editor_saves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    (page,) = pages
    form = page.context["form"]
    shown = [f.initial["comment"] for f in form.rows.forms if f.initial]
    version = form.policy.initial["version"]
    assert (shown, version) == (["v1"], 1)
    assert RelayPolicy.load().version == 2
    # A save from that page is refused as stale: the other editor's save is not undone.
    response = client.post(
        "/relay/machines/",
        _post_data([{"pattern": "192.168.1.0/24", "comment": "v1"}]) | {"version": str(version)},
    )
    assert response.status_code == 409
    assert _stored() == [("rule", "192.168.1.0/24", "default", "v2")]


def test_a_control_character_is_named_once_not_also_as_non_ascii(editor_client: Client) -> None:
    data = b"#<> default\x0b*.*.*.* true\n#blank false\n*.*.*.* norelay\n"
    response = editor_client.post(
        "/relay/machines/import/", {"file": SimpleUploadedFile("effect.dat", data)}
    )
    preview = response.context["preview"]
    assert [(f.code, f.line) for f in preview.blocking] == [("relay.E040", 1)]
    assert preview.lines[0] == "#<> default\u240b*.*.*.* true"


def test_the_download_is_byte_for_byte_the_file_the_export_writes(
    editor_client: Client, tmp_path: Any
) -> None:
    ServerSettings.objects.filter(pk=1).update(export_line_ending="crlf")
    services.relay_rules_import(
        data=b"#<> default\r\n#blank false\r\n'\x96{\x8e\xd0LAN\r\n192.168.1.0/24 default\r\n"
        b"*.*.*.* norelay\r\n",
        replace=True,
    )
    downloaded = editor_client.get("/relay/machines/effect.dat/?download=1").content
    shown = editor_client.get("/relay/machines/effect.dat/").context["lines"]
    call_command("export_config", "--dest", str(tmp_path), stdout=StringIO())
    written = (tmp_path / "effect.dat").read_bytes()
    assert downloaded == written
    assert "\r\n".join(shown).encode("cp932") + b"\r\n" == written
    assert written.split(b"\r\n")[3] == b"'\x96{\x8e\xd0LAN"


# --- open gateways, outside sites, typos (issue 9) ----------------------------------------------


def _wildcard_alias() -> None:
    from aliases.models import Alias, LocalDomain

    domain = LocalDomain.objects.create(name="example.co.jp")
    Alias.objects.create(
        position=1,
        pattern="*@example.co.jp",
        key="*@example.co.jp",
        target="*@example.co.jp",
        domain=domain,
    )


def test_half_the_internet_on_default_is_refused_on_its_row(editor_client: Client) -> None:
    _wildcard_alias()
    data = _post_data([{"pattern": "192.168.1.0/24"}, {"pattern": "0.0.0.0/1"}])

    response = editor_client.post("/relay/machines/", data)

    assert response.status_code == 200
    form = response.context["form"]
    assert [f.code for f in form.row_forms[1].findings if f.is_error] == ["relay.E016"]
    assert _stored() == []


def test_outside_site_needs_a_note_and_an_address(editor_client: Client) -> None:
    data = _post_data(
        [
            {"pattern": "8.8.8.8", "outside_site": "on"},
            {"pattern": "abc.co.jp", "outside_site": "on", "site_note": "x"},
        ]
    )

    response = editor_client.post("/relay/machines/", data)

    rows = response.context["form"].rows.forms
    assert rows[0].errors.as_data()["site_note"][0].code == "required"
    assert rows[1].errors.as_data()["outside_site"][0].code == "site_pattern"
    assert _stored() == []


def test_declared_outside_site_is_saved_and_counted_on_the_dashboard(
    editor_client: Client,
) -> None:
    _wildcard_alias()
    data = _post_data(
        [
            {"pattern": "192.168.1.0/24"},
            {"pattern": "8.8.8.0/30", "outside_site": "on", "site_note": "Osaka branch"},
        ]
    )

    response = editor_client.post("/relay/machines/", data)

    assertRedirects(response, "/relay/machines/")
    rule = RelayRule.objects.get(pattern="8.8.8.0/30")
    assert (rule.outside_site, rule.outside_site_note) == (True, "Osaka branch")
    report = services.relay_check()
    assert [(f.code, f.line) for f in report.findings if f.code == "relay.W020"] == [
        ("relay.W020", 5)
    ]
    dashboard = editor_client.get("/")
    assert dashboard.context["outside_sites"]["count"] == 4
    assertContains(dashboard, 'data-status="safe"')
    assertContains(dashboard, 'data-testid="outside-sites" data-count="4"')


def test_declared_outside_site_over_the_limit_is_refused(editor_client: Client) -> None:
    server = ServerSettings.load()
    server.outside_site_limit = 2
    server.save()
    data = _post_data([{"pattern": "8.8.8.0/30", "outside_site": "on", "site_note": "DC"}])

    response = editor_client.post("/relay/machines/", data)

    form = response.context["form"]
    assert [f.code for f in form.row_forms[0].findings if f.is_error] == ["relay.E018"]


def test_typo_row_shows_what_the_daemon_does_and_the_fix_rewrites_it(
    editor_client: Client,
) -> None:
    services.relay_rules_import(
        data=b"#<> default\n#blank false\n192.168.1.0/24  norelay\n*.*.*.* norelay\n",
        replace=True,
    )
    page = editor_client.get("/relay/machines/")
    assertContains(page, 'data-testid="daemon-view"')
    assertContains(page, "192.168.1.0/24␣␣norelay")
    assertContains(page, 'name="fix" value="form-0"')

    data = _post_data(
        [{"pattern": "192.168.1.0/24", "modifier": "norelay", "text": "192.168.1.0/24  norelay"}]
    )
    assert [f.code for f in services.relay_check().findings if f.is_error] == ["relay.E023"]
    fixed = editor_client.post("/relay/machines/", {**data, "fix": "form-0"})
    form = fixed.context["form"]
    assert form.rows.forms[0]["text"].value() == ""
    assert [f.code for f in form.row_forms[0].findings] == ["relay.W014"]
    saved = editor_client.post("/relay/machines/", {**data, "form-0-text": ""})
    assertRedirects(saved, "/relay/machines/")
    assert RelayRule.objects.get().text == ""


def test_unknown_modifier_fix_uses_the_modifier_meant(editor_client: Client) -> None:
    data = _post_data(
        [{"pattern": "192.168.1.0/24", "modifier": "flase", "text": "192.168.1.0/24 flase"}]
    )

    fixed = editor_client.post("/relay/machines/", {**data, "fix": "form-0"})

    row = fixed.context["form"].rows.forms[0]
    assert (row["modifier"].value(), row["text"].value()) == ("false", "")


@pytest.mark.parametrize(
    "value", ["default\x0b*.*.*.* true", "default\x0c", "default\x1c*", "default\n*.*.*.* true"]
)
def test_header_with_a_control_character_is_refused_and_nothing_is_saved(
    editor_client: Client, value: str
) -> None:
    response = editor_client.post("/relay/machines/", _post_data([], header_null=value))

    assert response.status_code == 200
    errors = response.context["form"].policy.errors.as_data()
    assert errors["header_null"][0].code == "invalid_choice"
    assert RelayPolicy.load().version == 0
