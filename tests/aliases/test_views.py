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
    assert [(r.alias.pattern, r.row, [f.code for f in r.findings]) for r in rows] == [
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
    assert [r.alias.pattern for r in response.context["rows"]] == [f"sales@{DOMAIN}"]
    response = viewer_client.get(LIST, {"q": "sales", "domain": str(other.pk)})
    assert [r.alias.pattern for r in response.context["rows"]] == ["sales@other.jp"]
    assert [r.row for r in response.context["rows"]] == [3]


def test_list_paginates_by_50(viewer_client: Client) -> None:
    for i in range(51):
        make_alias(f"u{i}")
    response = viewer_client.get(LIST, {"page": 2})
    assert [(r.alias.pattern, r.row) for r in response.context["rows"]] == [(f"u50@{DOMAIN}", 51)]


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


def test_list_has_a_labelled_select_all_and_an_order_column_that_does_not_wrap(
    editor_client: Client,
) -> None:
    make_alias("a")
    response = editor_client.get(LIST)
    assertContains(
        response,
        '<input class="form-check-input" type="checkbox" id="select-all" data-select-all '
        'data-testid="select-all" aria-label="このページのエイリアスをすべて選択" hidden>',
        count=1,
    )
    assertContains(response, '<th scope="col" class="text-nowrap">順序</th>', count=1)
    assertContains(response, '<td class="text-end text-nowrap">1</td>', count=1)
    assertContains(response, 'src="/static/js/aliases.js"', count=1)


def test_viewer_has_no_selection_and_no_move_controls(viewer_client: Client) -> None:
    alias = make_alias("a")
    response = viewer_client.get(LIST)
    assertNotContains(response, "data-select-all")
    assertNotContains(response, 'data-testid="move-to"')
    assert viewer_client.post(f"/aliases/{alias.pk}/move/", {"row": "1"}).status_code == 403
    assert viewer_client.post(f"/aliases/{alias.pk}/above-wildcard/").status_code == 403
    assert viewer_client.post("/aliases/delete/", {"selected": [alias.pk]}).status_code == 403


def test_bulk_delete_first_asks_naming_the_count_and_every_address(editor_client: Client) -> None:
    a, b, c = make_alias("a"), make_alias("b"), make_alias("c")
    response = editor_client.post(
        "/aliases/delete/", {"selected": [c.pk, a.pk], "next": "/aliases/?q=x"}
    )
    assert response.status_code == 200
    assert [(alias.pattern, row) for alias, row in response.context["rows"]] == [
        (f"a@{DOMAIN}", 1),
        (f"c@{DOMAIN}", 3),
    ]
    assertContains(
        response,
        "次の 2 件のエイリアスを削除しますか？変更を反映すると、これらのアドレス宛てのメール"
        "は拒否されます。",
        count=1,
    )
    assertContains(response, f'<td class="mono">a@{DOMAIN}</td>', count=1)
    assertContains(response, f'<td class="mono">c@{DOMAIN}</td>', count=1)
    assertContains(response, "2 件のエイリアスを削除</button>", count=1)
    assertContains(response, '<input type="hidden" name="confirm" value="yes">', count=1)
    assertContains(response, '<a class="btn btn-link" href="/aliases/?q=x">', count=1)
    assert Alias.objects.count() == 3

    response = editor_client.post(
        "/aliases/delete/",
        {"selected": [a.pk, c.pk], "next": "/aliases/?q=x", "confirm": "yes"},
    )
    assert response["Location"] == "/aliases/?q=x"
    assert list(Alias.objects.values_list("pk", flat=True)) == [b.pk]
    assert messages_of(response, "success") == ["2 件のエイリアスを削除しました。"]


@pytest.mark.parametrize("confirm", ["", "yes"])
def test_bulk_delete_refuses_an_empty_selection_with_a_message(
    editor_client: Client, confirm: str
) -> None:
    make_alias("a")
    response = editor_client.post(
        "/aliases/delete/", {"next": "/aliases/?page=2", "confirm": confirm}
    )
    assert response["Location"] == "/aliases/?page=2"
    assert messages_of(response, "danger") == [
        "エイリアスが選択されていません。一覧で削除するエイリアスにチェックを付けてから"
        "「選択したエイリアスを削除」を押してください。"
    ]
    assert Alias.objects.count() == 1


def test_bulk_delete_of_aliases_deleted_meanwhile_says_so(editor_client: Client) -> None:
    a = make_alias("a")
    services.aliases_delete(ids=[a.pk])
    response = editor_client.post("/aliases/delete/", {"selected": [a.pk]})
    assert response["Location"] == LIST
    assert messages_of(response, "danger") == ["選択したエイリアスはすでに存在しません。"]


def test_bulk_delete_ignores_foreign_next(editor_client: Client) -> None:
    a = make_alias("a")
    response = editor_client.post(
        "/aliases/delete/", {"selected": [a.pk], "next": "https://evil.example/"}
    )
    assertContains(response, f'<input type="hidden" name="next" value="{LIST}">', count=1)
    response = editor_client.post(
        "/aliases/delete/",
        {"selected": [a.pk], "next": "https://evil.example/", "confirm": "yes"},
    )
    assert response["Location"] == LIST


def order() -> list[str]:
    return [p.split("@")[0] for p in Alias.objects.values_list("pattern", flat=True)]


def test_move_to_position_shifts_the_rows_between_and_says_where(editor_client: Client) -> None:
    a, b, _c, d = (make_alias(name) for name in "abcd")
    response = editor_client.post(f"/aliases/{d.pk}/move/", {"row": "2", "next": "/aliases/"})
    assert order() == ["a", "d", "b", "c"]
    assert response["Location"] == f"/aliases/?page=1#alias-{d.pk}"
    assert messages_of(response, "success") == [f"d@{DOMAIN} を 4 番目から 2 番目へ移動しました。"]
    editor_client.post(f"/aliases/{a.pk}/move/", {"row": "99"})
    assert order() == ["d", "b", "c", "a"]
    response = editor_client.post(f"/aliases/{b.pk}/move/", {"row": "2"})
    assert messages_of(response, "info") == [f"b@{DOMAIN} はすでに 2 番目です。"]
    assert order() == ["d", "b", "c", "a"]


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("abc", "整数を入力してください。"),
        ("0", "この値は 1 以上でなければなりません。"),
        ("", "このフィールドは必須です。"),
    ],
)
def test_move_to_position_refuses_bad_input_naming_it(
    editor_client: Client, typed: str, error: str
) -> None:
    a, _b = make_alias("a"), make_alias("b")
    response = editor_client.post(f"/aliases/{a.pk}/move/", {"row": typed, "next": "/aliases/"})
    assert response["Location"] == LIST
    assert messages_of(response, "danger") == [
        f"a@{DOMAIN} は移動していません。「{typed}」: {error}"
    ]
    assert order() == ["a", "b"]


def test_move_to_position_returns_to_the_page_that_now_shows_the_alias(
    editor_client: Client,
) -> None:
    services.aliases_import_csv(
        data="".join(f"u{i:02d}@{DOMAIN},x@inner.jp\n" for i in range(60)).encode(),
        encoding="auto",
        add_domains=False,
        dry_run=False,
    )
    first = Alias.objects.get(pattern=f"u00@{DOMAIN}")
    response = editor_client.post(
        f"/aliases/{first.pk}/move/", {"row": "55", "next": "/aliases/?page=1"}
    )
    assert response["Location"] == f"/aliases/?page=2#alias-{first.pk}"
    response = editor_client.get(response["Location"].split("#")[0])
    assert [r.row for r in response.context["rows"] if r.alias.pk == first.pk] == [55]
    # A search keeps its page: the rows are numbered in the whole table, not in the search.
    response = editor_client.post(
        f"/aliases/{first.pk}/move/", {"row": "1", "next": "/aliases/?q=u0&page=1"}
    )
    assert response["Location"] == f"/aliases/?q=u0&page=1#alias-{first.pk}"


def test_shadowed_alias_offers_and_makes_the_move_above_its_wildcard(
    editor_client: Client,
) -> None:
    ServerSettings.objects.filter(pk=1).update(licence="100")
    make_alias("first")
    make_alias("2009*", "2009*@inner.jp")
    make_alias("other")
    shadowed = make_alias("2009abe")
    response = editor_client.get(LIST)
    assert [(r.alias.pk, r.wildcard, r.wildcard_row) for r in response.context["rows"]][3] == (
        shadowed.pk,
        f"2009*@{DOMAIN}",
        2,
    )
    assertContains(response, 'data-testid="move-above-wildcard"', count=1)
    assertContains(response, f"2009*@{DOMAIN} (2 番目) の上へ移動", count=1)

    response = editor_client.post(f"/aliases/{shadowed.pk}/above-wildcard/", {"next": "/aliases/"})
    assert order() == ["first", "2009abe", "2009*", "other"]
    assert response["Location"] == f"/aliases/?page=1#alias-{shadowed.pk}"
    assert messages_of(response, "success") == [
        f"2009abe@{DOMAIN} を 4 番目から 2 番目 (ワイルドカード 2009*@{DOMAIN} の上) へ移動"
        "しました。このエイリアスが再び使われます。"
    ]
    response = editor_client.get(LIST)
    assertNotContains(response, 'data-testid="move-above-wildcard"')
    assertNotContains(response, 'data-code="alias.W002"')

    response = editor_client.post(f"/aliases/{shadowed.pk}/above-wildcard/")
    assert messages_of(response, "info") == [
        f"2009abe@{DOMAIN} の上に、このエイリアス宛てのメールを先に受けるワイルドカードは"
        "ありません。"
    ]
    assert order() == ["first", "2009abe", "2009*", "other"]


def test_move_of_a_deleted_alias_is_not_found(editor_client: Client) -> None:
    assert editor_client.post("/aliases/999/move/", {"row": "1"}).status_code == 404
    assert editor_client.post("/aliases/999/above-wildcard/").status_code == 404


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
    assert [(row.line, row.status) for row, _raw in response.context["preview_rows"]] == [
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
    assert [(row.line, row.status) for row, _raw in response.context["preview_rows"]] == [
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


def test_upload_page_says_aliases_missing_from_the_file_are_kept(editor_client: Client) -> None:
    kept = (
        "ファイルにないエイリアスはそのまま残ります。アップロードはエイリアスを追加・変更する"
        "だけで、削除はしません。"
    )
    response = editor_client.get("/aliases/upload/")
    assertContains(response, kept, count=1)
    assertContains(response, '<code translate="no">エイリアス,実アドレス,コメント</code>', count=1)
    assertContains(response, '<code translate="no">alias,mapped_to,comment</code>', count=1)
    make_alias("a")
    make_alias("b")
    response = upload(editor_client, f"b@{DOMAIN},b2@inner.jp\nc@{DOMAIN},c@inner.jp\n".encode())
    assertContains(response, kept, count=1)
    assert response.context["kept"] == 1
    assertContains(
        response,
        '<span class="badge text-bg-light border" data-count="kept">'
        "ファイルにない (そのまま残す): 1</span>",
        count=1,
    )
    assertContains(response, 'data-testid="confirm"', count=1)


def test_upload_preview_without_changes_offers_no_import(editor_client: Client) -> None:
    make_alias("a", "a@inner.jp")
    response = upload(editor_client, f"a@{DOMAIN},a@inner.jp\n".encode())
    assert response.context["changes"] is False
    assertNotContains(response, 'data-testid="confirm"')
    assertContains(
        response,
        "このファイルのエイリアスはすべて同じ内容で登録済みです。取り込むものはありません。",
        count=1,
    )
    response = upload(editor_client, f"a@{DOMAIN},a@inner.jp,営業\n".encode())
    assert response.context["changes"] is True
    assertContains(response, 'data-testid="confirm"', count=1)
    assertNotContains(response, 'data-testid="preview-no-changes"')


def test_upload_preview_error_row_shows_what_was_on_the_line(editor_client: Client) -> None:
    content = (
        "エイリアス,実アドレス,コメント\r\n"
        "ok@example.co.jp,ok@inner.jp,山田\r\n"
        "<b>bad</b>,x@inner.jp,営業\x07部\r\n"
        "four@example.co.jp,x@inner.jp,a,b\r\n"
        ",\r\n"
        'q@example.co.jp,"x@inner.jp\r\n'
    ).encode("cp932")
    response = upload(editor_client, content)
    rows = {row.line: raw for row, raw in response.context["preview_rows"]}
    assert rows[2] is None
    assert rows[3] == services.RawLine(
        "<b>bad</b>,x@inner.jp,営業\\x07部", ("<b>bad</b>", "x@inner.jp", "営業\\x07部")
    )
    assert rows[4] == services.RawLine(
        "four@example.co.jp,x@inner.jp,a,b", ("four@example.co.jp", "x@inner.jp", "a", "b")
    )
    assert rows[6] == services.RawLine(
        'q@example.co.jp,"x@inner.jp', ("q@example.co.jp", "x@inner.jp")
    )
    html = response.content.decode()
    assert (
        '<code data-testid="raw-line">&lt;b&gt;bad&lt;/b&gt;,x@inner.jp,営業\\x07部</code>' in html
    )
    assert '<td class="mono" data-cell="alias"><span translate="no">&lt;b&gt;bad&lt;/b&gt;' in html
    assert "<b>bad</b>" not in html
    assertContains(response, "(ほかに 1 個のセル)", count=1)
    assertContains(response, '<span class="text-body-secondary">(空欄)</span>', count=0)
    assertContains(response, "read as", count=0)
    assertContains(response, '(<span translate="no">Shift_JIS (CP932)</span> として読み取り)')


def test_upload_preview_marks_empty_cells_of_a_refused_line(editor_client: Client) -> None:
    response = upload(editor_client, b"ok@example.co.jp,ok@inner.jp\n ,x@inner.jp\n")
    raw = dict((row.line, raw) for row, raw in response.context["preview_rows"])[2]
    assert raw == services.RawLine(" ,x@inner.jp", (" ", "x@inner.jp"))
    assertContains(
        response,
        '<td class="mono" data-cell="alias"><span class="text-body-secondary">(空)</span></td>',
        count=1,
    )
    assertContains(response, '<code data-testid="raw-line"> ,x@inner.jp</code>', count=1)


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
