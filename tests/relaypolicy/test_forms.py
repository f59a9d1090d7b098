from __future__ import annotations

from relaypolicy.forms import SimulationForm


def test_simulation_form_reads_one_recipient_per_line() -> None:
    form = SimulationForm(
        data={"client_ip": "192.168.1.5", "mail_from": "", "rcpt_to": "a@b.jp\n\n c@d.jp \n"}
    )
    assert form.is_valid()
    assert (form.cleaned_data["mail_from"], form.cleaned_data["rcpt_to"]) == (
        "",
        ["a@b.jp", "c@d.jp"],
    )


def test_simulation_form_limits_the_recipients() -> None:
    form = SimulationForm(
        data={"client_ip": "192.168.1.5", "rcpt_to": "\n".join(f"u{n}@b.jp" for n in range(51))}
    )
    assert [e.code for e in form.errors.as_data()["rcpt_to"]] == ["too_many"]
