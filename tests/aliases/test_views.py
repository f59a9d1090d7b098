from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext
from pytest_django.asserts import assertContains, assertNotContains

from aliases import services
from aliases.forms import AliasForm
from aliases.models import Alias, AliasUpload, LocalDomain
from aliases.views import STALE, UNKNOWN
from controlcenter.models import ServerSettings
from relaypolicy.models import RelayPolicy

pytestmark = pytest.mark.django_db

DOMAIN = "example.co.jp"
LIST = "/aliases/"


@pytest.fixture(autouse=True)
def domain() -> LocalDomain:
    server = ServerSettings.load()
    server.licence = "unlimited"
    server.save()
    return LocalDomain.objects.create(name=DOMAIN)


def make_alias(local: str, target: str = "x@inner.jp") -> Alias:
    return services.alias_create(pattern=f"{local}@{DOMAIN}", target=target).alias


def upload(client: Client, content: bytes, **extra: str) -> Any:
    data = {"file": SimpleUploadedFile("a.csv", content, "text/csv"), "encoding": "auto", **extra}
    return client.post("/aliases/upload/", data)


def test_list_shows_rows_numbered_with_inline_findings(viewer_client: Client) -> None:
    ServerSettings.objects.filter(pk=1).update(licence="100")
    make_alias("2009*", "2009*@inner.jp")
    make_alias("2009abe")
    response = viewer_client.get(LIST)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(a.pattern, n, [f.code for f in fs]) for a, n, fs in rows] == [
        (f"2009*@{DOMAIN}", 1, ["alias.I001", "alias.I002"]),
        (f"2009abe@{DOMAIN}", 2, ["alias.W002"]),
    ]
    assertContains(response, 'data-code="alias.W002"', count=2)  # summary + row
    assertContains(response, "<meter", count=1)
    assert response.context["usage"].used == 3


def test_list_search_and_domain_filter(viewer_client: Client) -> None:
    make_alias("sales", "team@inner.jp")
    make_alias("info", "info@inner.jp")
    other = LocalDomain.objects.create(name="other.jp")
    services.alias_create(pattern="sales@other.jp", target="s@inner.jp")
    response = viewer_client.get(LIST, {"q": "team"})
    assert [a.pattern for a, _n, _f in response.context["rows"]] == [f"sales@{DOMAIN}"]
    response = viewer_client.get(LIST, {"q": "sales", "domain": str(other.pk)})
    assert [a.pattern for a, _n, _f in response.context["rows"]] == ["sales@other.jp"]
    assert [n for _a, n, _f in response.context["rows"]] == [3]


def test_list_paginates_by_50(viewer_client: Client) -> None:
    for i in range(51):
        make_alias(f"u{i}")
    response = viewer_client.get(LIST, {"page": 2})
    assert [(a.pattern, n) for a, n, _f in response.context["rows"]] == [(f"u50@{DOMAIN}", 51)]


def test_viewer_can_list_but_not_change(viewer_client: Client) -> None:
    alias = make_alias("a")
    assert viewer_client.get(LIST).status_code == 200
    assert viewer_client.post("/aliases/add/", {"pattern": f"b@{DOMAIN}"}).status_code == 403
    assert viewer_client.post(f"/aliases/{alias.pk}/delete/").status_code == 403
    assert viewer_client.post("/aliases/delete/", {"selected": [alias.pk]}).status_code == 403
    assert viewer_client.post(f"/aliases/{alias.pk}/up/").status_code == 403
    assert viewer_client.get("/aliases/upload/").status_code == 403
    assert Alias.objects.count() == 1


def test_add_alias_redirects_with_message(editor_client: Client) -> None:
    response = editor_client.post(
        "/aliases/add/",
        {"pattern": f"ｙａｍａｄａ@{DOMAIN}", "target": "y@inner.jp", "option": "0"},
    )
    assert response.status_code == 302
    assert list(Alias.objects.values_list("pattern", "option")) == [(f"yamada@{DOMAIN}", "0")]


def test_add_alias_rerenders_input_with_finding_code(editor_client: Client) -> None:
    response = editor_client.post(
        "/aliases/add/",
        {"pattern": "a@nowhere.example.jp", "target": "a@inner.jp", "comment": "keep me"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors.as_data()["pattern"][0].code == "alias.E003"
    assertContains(response, 'value="keep me"')
    assertContains(response, 'value="a@nowhere.example.jp"')


def test_add_alias_syntax_error_on_field(editor_client: Client) -> None:
    response = editor_client.post("/aliases/add/", {"pattern": "nodomain", "target": "a@inner.jp"})
    assert [e.code for e in response.context["form"].errors.as_data()["pattern"]] == ["syntax"]
    assertContains(response, 'value="nodomain"')


def test_edit_alias(editor_client: Client) -> None:
    alias = make_alias("a")
    response = editor_client.get(f"/aliases/{alias.pk}/")
    assertContains(response, f'value="a@{DOMAIN}"')
    response = editor_client.post(
        f"/aliases/{alias.pk}/", {"pattern": f"a@{DOMAIN}", "target": "new@inner.jp", "comment": ""}
    )
    assert response.status_code == 302
    alias.refresh_from_db()
    assert alias.target == "new@inner.jp"
    assert messages_of(response, "warning") == []


def test_delete_needs_post_and_confirms(editor_client: Client) -> None:
    alias = make_alias("a")
    response = editor_client.get(f"/aliases/{alias.pk}/delete/")
    assertContains(response, 'data-testid="confirm-delete"')
    assert Alias.objects.count() == 1
    assert editor_client.post(f"/aliases/{alias.pk}/delete/").status_code == 302
    assert Alias.objects.count() == 0


def test_bulk_delete_selected(editor_client: Client) -> None:
    a, b, c = make_alias("a"), make_alias("b"), make_alias("c")
    response = editor_client.post(
        "/aliases/delete/", {"selected": [a.pk, c.pk], "next": "/aliases/?q=x"}
    )
    assert response["Location"] == "/aliases/?q=x"
    assert list(Alias.objects.values_list("pk", flat=True)) == [b.pk]


def test_bulk_delete_ignores_foreign_next(editor_client: Client) -> None:
    a = make_alias("a")
    response = editor_client.post(
        "/aliases/delete/", {"selected": [a.pk], "next": "https://evil.example/"}
    )
    assert response["Location"] == LIST


def test_move_down_then_up(editor_client: Client) -> None:
    a, b = make_alias("a"), make_alias("b")
    editor_client.post(f"/aliases/{a.pk}/down/")
    assert list(Alias.objects.values_list("pk", flat=True)) == [b.pk, a.pk]
    editor_client.post(f"/aliases/{a.pk}/up/")
    assert list(Alias.objects.values_list("pk", flat=True)) == [a.pk, b.pk]


def test_export_filtered_csv(viewer_client: Client) -> None:
    make_alias("sales", "team@inner.jp")
    make_alias("info")
    response = viewer_client.get("/aliases/aliases.csv", {"q": "sales"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content == (
        b"\xef\xbb\xbfalias,mapped_to,comment\r\nsales@example.co.jp,team@inner.jp,\r\n"
    )


def test_upload_preview_shows_error_line_and_confirm_is_absent(editor_client: Client) -> None:
    content = (
        "エイリアス,実アドレス,コメント\r\nok@example.co.jp,ok@inner.jp,山田\r\nbad,x@inner.jp,\r\n"
    )
    response = upload(editor_client, content.encode("cp932"))
    assert response.status_code == 200
    report = response.context["report"]
    assert [(row.line, row.status) for row in report.rows] == [(2, "created"), (3, "error")]
    assert [(f.line, f.code) for f in report.errors] == [(3, "csv.E006")]
    assertContains(response, 'data-testid="preview-refused"')
    assert 'data-testid="confirm"' not in response.content.decode()
    assert Alias.objects.count() == 0


def test_upload_preview_then_confirm_imports(editor_client: Client) -> None:
    response = upload(editor_client, b"new@other.example.jp,n@inner.jp\n", add_domains="on")
    token = response.context["upload"].token
    assert response.context["report"].domains_added == ("other.example.jp",)
    assertContains(response, f'name="token" value="{token}"')
    response = editor_client.post("/aliases/upload/confirm/", {"token": token})
    assert response.status_code == 302
    assert list(Alias.objects.values_list("pattern", flat=True)) == ["new@other.example.jp"]
    assert AliasUpload.objects.count() == 0


def test_upload_confirm_refuses_when_data_changed_since_preview(editor_client: Client) -> None:
    response = upload(editor_client, b"a@example.co.jp,a@inner.jp\n")
    token = response.context["upload"].token
    make_alias("b")
    response = editor_client.post("/aliases/upload/confirm/", {"token": token})
    assert response.status_code == 409
    assert list(Alias.objects.values_list("pattern", flat=True)) == [f"b@{DOMAIN}"]


def test_upload_confirm_refuses_tampered_token(editor_client: Client) -> None:
    response = upload(editor_client, b"a@example.co.jp,a@inner.jp\n")
    token = response.context["upload"].token
    response = editor_client.post("/aliases/upload/confirm/", {"token": token[::-1]})
    assert response.status_code == 400
    assert "preview_rows" not in response.context
    assert Alias.objects.count() == 0


def test_upload_too_large_is_refused_with_message(editor_client: Client, settings) -> None:
    settings.CC_UPLOAD_MAX_BYTES = 10
    response = upload(editor_client, b"a@example.co.jp,a@inner.jp\n")
    assert response.context["form"].errors.as_data()["file"][0].code == "too_large"
    assertContains(response, "受け付けられる最大サイズは 10\xa0バイト です。")


def test_upload_error_report_csv(editor_client: Client) -> None:
    response = upload(editor_client, b"alias,mapped_to\nbad,x@inner.jp\n")
    token = response.context["upload"].token
    report = editor_client.get(f"/aliases/upload/{token}/report.csv")
    text = report.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "line,level,code,message"
    assert re.match(r"2,error,csv\.E006,", text.splitlines()[1])
    assert editor_client.get("/aliases/upload/nope/report.csv").status_code == 404


def fullwidth_warning(field: str, before: str, after: str) -> str:
    """The warning after saving, in the language the pages answer in."""
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(
            "%(field)s: full-width characters were converted: %(before)s → %(after)s"
        ) % {"field": AliasForm.base_fields[field].label, "before": before, "after": after}


def messages_of(response: Any, level: str) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request) if m.level_tag == level]


def test_add_alias_warns_about_each_fullwidth_conversion_after_saving(
    editor_client: Client,
) -> None:
    response = editor_client.post(
        "/aliases/add/", {"pattern": f"yamada＠{DOMAIN}", "target": "y１２３@inner.jp"}
    )
    assert response.status_code == 302
    assert list(Alias.objects.values_list("pattern", "target")) == [
        (f"yamada@{DOMAIN}", "y123@inner.jp")
    ]
    assert messages_of(response, "warning") == [
        fullwidth_warning("pattern", f"yamada＠{DOMAIN}", f"yamada@{DOMAIN}"),
        fullwidth_warning("target", "y１２３@inner.jp", "y123@inner.jp"),
    ]


def test_edit_alias_warns_about_a_fullwidth_conversion_after_saving(editor_client: Client) -> None:
    alias = make_alias("a")
    response = editor_client.post(
        f"/aliases/{alias.pk}/", {"pattern": f"a@{DOMAIN}", "target": "ｎｅｗ２@inner.jp"}
    )
    assert response.status_code == 302
    assert Alias.objects.get(pk=alias.pk).target == "new2@inner.jp"
    assert messages_of(response, "warning") == [
        fullwidth_warning("target", "ｎｅｗ２@inner.jp", "new2@inner.jp")
    ]


@pytest.mark.parametrize(
    ("typed", "code"),
    [("ｙａｍａｄａ＠nowhere.example.jp", "alias.E003"), ("ｙａｍａｄａ", "syntax")],
)
def test_add_alias_refused_rerenders_fullwidth_input_as_typed_without_warning(
    editor_client: Client, typed: str, code: str
) -> None:
    response = editor_client.post("/aliases/add/", {"pattern": typed, "target": "a@inner.jp"})
    assert response.status_code == 200
    assert [e.code for e in response.context["form"].errors.as_data()["pattern"]] == [code]
    assertContains(response, f'value="{typed}"')
    assert messages_of(response, "warning") == []
    assert Alias.objects.count() == 0


def test_upload_confirm_refused_as_stale_shows_the_current_preview_and_why(
    editor_client: Client,
) -> None:
    response = upload(editor_client, b"a@example.co.jp,a@inner.jp\nb@example.co.jp,b2@inner.jp\n")
    token = response.context["upload"].token
    make_alias("b", "b@inner.jp")

    response = editor_client.post("/aliases/upload/confirm/", {"token": token})

    assert response.status_code == 409
    assert response.context["upload"].token == token
    assert [(row.line, row.status) for row in response.context["preview_rows"]] == [
        (1, "created"),
        (2, "updated"),
    ]
    with translation.override(settings.LANGUAGE_CODE):
        assertContains(response, escape(gettext(STALE)), count=1, status_code=409)
    assertContains(response, 'data-testid="preview-table"', count=1, status_code=409)
    assertNotContains(response, 'data-testid="confirm"', status_code=409)
    assert list(Alias.objects.values_list("pattern", "target")) == [(f"b@{DOMAIN}", "b@inner.jp")]


def test_upload_with_errors_is_not_kept_and_cannot_be_confirmed(editor_client: Client) -> None:
    response = upload(editor_client, b"ok@example.co.jp,ok@inner.jp\nbad,x@inner.jp\n")
    token = response.context["upload"].token
    stored = AliasUpload.objects.get(token=token)
    assert (stored.refused, bytes(stored.data), stored.sha256) == (True, b"", "")
    assert [(row.line, row.status) for row in response.context["preview_rows"]] == [
        (1, "created"),
        (2, "error"),
    ]
    assertContains(response, 'data-testid="preview-refused"', count=1)

    response = editor_client.post("/aliases/upload/confirm/", {"token": token})

    assert response.status_code == 400
    with translation.override(settings.LANGUAGE_CODE):
        assertContains(response, escape(gettext(UNKNOWN)), count=1, status_code=400)
    assertNotContains(response, 'data-testid="confirm"', status_code=400)
    assert Alias.objects.count() == 0
    report = editor_client.get(f"/aliases/upload/{token}/report.csv")
    assert report.status_code == 200
    assert report.content.decode("utf-8-sig").splitlines()[1].startswith("2,error,csv.E006,")


def test_domain_add_list_and_delete(editor_client: Client, domain: LocalDomain) -> None:
    response = editor_client.post(
        "/aliases/domains/add/", {"name": "New.Example.jp", "comment": ""}
    )
    assert response.status_code == 302
    new = LocalDomain.objects.get(name="new.example.jp")
    make_alias("a")
    response = editor_client.get("/aliases/domains/")
    assert [(d.name, d.alias_count) for d in response.context["object_list"]] == [
        (DOMAIN, 1),
        ("new.example.jp", 0),
    ]
    editor_client.post(f"/aliases/domains/{domain.pk}/delete/")
    editor_client.post(f"/aliases/domains/{new.pk}/delete/")
    assert list(LocalDomain.objects.values_list("name", flat=True)) == [DOMAIN]


def test_domain_add_rerenders_invalid_name(editor_client: Client) -> None:
    response = editor_client.post("/aliases/domains/add/", {"name": "nodot", "comment": "c"})
    assert response.status_code == 200
    assert response.context["form"].errors.as_data()["name"][0].code == "invalid_domain"
    assertContains(response, 'value="nodot"')


def test_breadcrumbs(viewer_client: Client) -> None:
    response = viewer_client.get("/aliases/domains/")
    assert [url for _label, url in response.context["breadcrumbs"]] == [
        "/",
        None,  # 「メールサーバ管理」 is the same page as 「システム管理メニュー」: linked once
        "/system/",
        "/aliases/",
        None,
    ]
    assert str(response.context["breadcrumbs"][3][0]) == "エイリアス管理"


def test_upload_of_the_servers_open_wildcard_is_imported_and_said_to_block_publishing(
    editor_client: Client,
) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    response = upload(editor_client, b"*@example.co.jp,*@example.co.jp\n")
    assert [(f.line, f.code) for f in response.context["report"].risks] == [(1, "alias.E006")]
    assertContains(response, 'data-testid="preview-risks"', count=1)
    assertNotContains(response, 'data-testid="preview-refused"')
    token = response.context["upload"].token
    response = editor_client.post("/aliases/upload/confirm/", {"token": token}, follow=True)
    assert list(Alias.objects.values_list("pattern", flat=True)) == ["*@example.co.jp"]
    texts = [str(m) for m in response.context["messages"]]
    assert (
        "これはサーバーの現在の設定です。赤で示したエラーを直すまで、設定の反映はできません。"
        in texts
    )
    dashboard = editor_client.get("/")
    assert dashboard.context["error_count"] >= 1
    assertContains(dashboard, 'data-status="open"')
