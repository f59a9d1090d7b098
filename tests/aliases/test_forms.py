from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from django.utils.datastructures import MultiValueDict

from aliases.forms import AliasForm, AliasUploadForm
from controlcenter.findings import Level, make


def test_alias_form_converts_fullwidth_and_strips() -> None:
    form = AliasForm(
        {"pattern": " ｓａｌｅｓ＠example.co.jp ", "target": "t@inner.jp", "option": ""}
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["pattern"] == "sales@example.co.jp"


def test_alias_form_names_each_fullwidth_conversion_with_before_and_after() -> None:
    form = AliasForm({"pattern": "ｓａｌｅｓ＠example.co.jp　", "target": "t２@inner.jp"})
    assert form.is_valid(), form.errors
    assert form.converted == {
        "pattern": ("ｓａｌｅｓ＠example.co.jp", "sales@example.co.jp"),
        "target": ("t２@inner.jp", "t2@inner.jp"),
    }
    with translation.override("en"):
        assert form.conversion_warnings() == [
            "Alias: full-width characters were converted: ｓａｌｅｓ＠example.co.jp → "
            "sales@example.co.jp",
            "Real address: full-width characters were converted: t２@inner.jp → t2@inner.jp",
        ]


def test_alias_form_ascii_input_converts_nothing() -> None:
    form = AliasForm({"pattern": "sales@example.co.jp", "target": "t@inner.jp"})
    assert form.is_valid(), form.errors
    assert (form.converted, form.conversion_warnings()) == ({}, [])


@pytest.mark.parametrize(
    ("field", "value"),
    [("pattern", "a@*.example.jp"), ("target", "a@inner.jp,2"), ("pattern", "user%x@d.jp")],
)
def test_alias_form_refuses_bad_addresses(field: str, value: str) -> None:
    data = {"pattern": "a@d.jp", "target": "t@d.jp", field: value}
    form = AliasForm(data)
    assert form.is_valid() is False
    assert [e.code for e in form.errors.as_data()[field]] == ["syntax"]


def test_alias_form_places_service_findings_on_fields() -> None:
    form = AliasForm({"pattern": "a@d.jp", "target": "t@d.jp"})
    assert form.is_valid()
    form.add_findings(
        [
            make(Level.ERROR, "alias.E005", "star %(x)s", x=1),
            make(Level.ERROR, "alias.E007", "licence"),
        ]
    )
    assert [e.code for e in form.errors.as_data()["target"]] == ["alias.E005"]
    assert [e.code for e in form.errors.as_data()["__all__"]] == ["alias.E007"]


def test_upload_form_enforces_the_size_limit(settings: pytest.FixtureRequest) -> None:
    settings.CC_UPLOAD_MAX_BYTES = 4  # type: ignore[attr-defined]
    form = AliasUploadForm(
        {"encoding": "auto"}, MultiValueDict({"file": [SimpleUploadedFile("a.csv", b"12345")]})
    )
    assert form.is_valid() is False
    assert [e.code for e in form.errors.as_data()["file"]] == ["too_large"]
