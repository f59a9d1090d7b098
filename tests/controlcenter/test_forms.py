"""controlcenter.forms: the 全設定 form's validation and its administrator-only fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import translation

from aliases import services as alias_services
from controlcenter.forms import ServerSettingsForm
from controlcenter.models import ServerSettings

pytestmark = pytest.mark.django_db

DATA = {
    "mode": "gateway",
    "licence": "50",
    "accounts": "1",
    "mailing_lists": "0",
    "max_message_size": "0",
    "max_recipients": "0",
    "export_dir": "",
    "export_line_ending": "lf",
    "console_folder": "/usr/local/mta/bin",
    "console_command": "./epstman",
    "console_mode_word": "NA",
}


def _form(export_settings: bool = True, **changes: str) -> ServerSettingsForm:
    return ServerSettingsForm(
        data=DATA | changes, instance=ServerSettings.load(), export_settings=export_settings
    )


def _errors(form: ServerSettingsForm) -> dict[str, list[tuple[str | None, str]]]:
    with translation.override("en"):
        return {
            field: [(error.code, error.messages[0]) for error in errors.as_data()]
            for field, errors in form.errors.items()
        }


def test_export_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    form = _form(export_dir=str(tmp_path / "file"))
    assert _errors(form) == {
        "export_dir": [("not_a_folder", f"{tmp_path / 'file'} exists and is not a folder.")]
    }


@pytest.mark.parametrize("folder", ["", "existing", "missing/deeper"])
def test_export_folder_may_exist_or_be_created_later(tmp_path: Path, folder: str) -> None:
    (tmp_path / "existing").mkdir()
    form = _form(export_dir=str(tmp_path / folder) if folder else "")
    assert _errors(form) == {}


def test_export_folder_help_text_says_what_is_refused() -> None:
    with translation.override("en"):
        assert str(_form().fields["export_dir"].help_text).endswith(
            "A folder that does not exist yet is created by the first export. System folders "
            "(/etc, /usr, /proc, /root, …) and names with control characters are refused, and "
            "links inside the folder are never followed."
        )
    assert "システムのフォルダ (/etc、/usr、/proc、/root など)" in str(
        _form().fields["export_dir"].help_text
    )


@pytest.mark.parametrize(
    ("value", "normal", "system"),
    [
        ("/etc", "/etc", "/etc"),
        ("/etc/postfix", "/etc/postfix", "/etc"),
        ("/root/.ssh", "/root/.ssh", "/root"),
        ("/home/admin/.ssh", "/home/admin/.ssh", "/home/admin/.ssh"),
        ("/proc/1", "/proc/1", "/proc"),
        ("/sys", "/sys", "/sys"),
        ("/dev", "/dev", "/dev"),
        ("/boot/", "/boot", "/boot"),
        ("/usr", "/usr", "/usr"),
        ("/usr/bin", "/usr/bin", "/usr/bin"),
        ("/", "/", "/"),
        ("/usr/local/mta/../../../etc", "/etc", "/etc"),
        ("//etc", "/etc", "/etc"),
        ("/srv/./export/../../etc/cron.d", "/etc/cron.d", "/etc"),
    ],
)
def test_export_folder_refuses_system_folders(value: str, normal: str, system: str) -> None:
    assert _errors(_form(export_dir=value)) == {
        "export_dir": [
            (
                "system_folder",
                f"{normal} is a system folder ({system}): the export never writes there. "
                "Choose the mail daemon's folder, such as /usr/local/mta/bin.",
            )
        ]
    }


def test_export_folder_refuses_a_link_to_a_system_folder(tmp_path: Path) -> None:
    (tmp_path / "export").symlink_to("/etc")
    assert _errors(_form(export_dir=str(tmp_path / "export")))["export_dir"][0][0] == (
        "system_folder"
    )


@pytest.mark.parametrize(
    ("value", "char"),
    [("/srv/ex\nport", "U+000A"), ("/srv/ex\u2028port", "U+2028"), ("/srv/\x0bx", "U+000B")],
)
def test_export_folder_refuses_control_characters(value: str, char: str) -> None:
    assert _errors(_form(export_dir=value)) == {
        "export_dir": [
            (
                "control_character",
                f"The folder name contains a control character ({char}), such as a line "
                "break: type it again.",
            )
        ]
    }


def test_export_folder_is_stored_normalised(tmp_path: Path) -> None:
    form = _form(export_dir=f"{tmp_path}//a/./b/../c/")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["export_dir"] == f"{tmp_path}/a/c"


@pytest.mark.parametrize("value", ["/usr/local/mta/bin", "/srv/relaycc/export", "/var/lib/rcc"])
def test_export_folder_accepts_the_daemons_folder_and_ordinary_ones(value: str) -> None:
    assert _errors(_form(export_dir=value)) == {}


def test_without_the_permission_export_settings_are_disabled_and_posted_values_ignored() -> None:
    form = _form(
        export_settings=False,
        export_dir="/etc",
        console_folder="/tmp",
        console_command="./evil",
        console_mode_word="X",
        max_recipients="7",
    )
    assert [name for name, field in form.fields.items() if field.disabled] == [
        "export_dir",
        "console_folder",
        "console_command",
        "console_mode_word",
    ]
    assert form.is_valid()
    server = form.save()
    assert (
        server.export_dir,
        server.console_folder,
        server.console_command,
        server.console_mode_word,
        server.max_recipients,
    ) == ("", "/usr/local/mta/bin", "./epstman", "NA", 7)


def _aliases(count: int) -> None:
    alias_services.domain_create(name="example.co.jp")
    for index in range(count):
        alias_services.alias_create(pattern=f"u{index}@example.co.jp", target=f"u{index}@inner.jp")


def test_settings_that_exceed_the_licence_are_refused_naming_the_numbers() -> None:
    _aliases(11)
    form = _form(licence="50", accounts="35", mailing_lists="5")
    assert _errors(form) == {
        "__all__": [
            (
                "licence_exceeded",
                "The licence allows 50 users, but 51 seats would be used "
                "(11 aliases, 35 accounts, 5 mailing lists).",
            )
        ]
    }
    assert _errors(_form(licence="50", accounts="34", mailing_lists="5")) == {}
    assert _errors(_form(licence="unlimited", accounts="1000", mailing_lists="5")) == {}
