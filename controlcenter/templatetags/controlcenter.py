from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django import template
from django.forms import BoundField
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext

from controlcenter import audit
from controlcenter.findings import Finding, Level
from controlcenter.models import AuditEntry
from controlcenter.simulation import Note

register = template.Library()

_CLASSES = {
    Level.ERROR: ("alert-danger", "text-bg-danger"),
    Level.WARNING: ("alert-warning", "text-bg-warning"),
    Level.INFO: ("alert-info", "text-bg-info"),
}


@register.filter
def finding_message(finding: Finding) -> str:
    return finding.render(gettext)


@register.filter
def finding_hint(finding: Finding) -> str:
    return finding.render_hint(gettext)


@register.filter
def finding_level(finding: Finding) -> str:
    labels = {
        Level.ERROR: pgettext("finding level", "Error"),
        Level.WARNING: pgettext("finding level", "Warning"),
        Level.INFO: pgettext("finding level", "Info"),
    }
    return labels[finding.level]


@register.filter
def numbered_lines(lines: Iterable[str]) -> str:
    """Lines of a file, each in a span with the anchor ``line-N`` that findings link to
    (written in one go: a file may have thousands of lines)."""
    return mark_safe(  # every line is escaped here
        "".join(
            f'<span id="line-{number}">{escape(line)}</span>\n'
            for number, line in enumerate(lines, start=1)
        )
    )


@register.filter
def finding_counts(findings: list[Finding]) -> dict[str, int]:
    """How many findings of each level: {"error": n, "warning": n, "info": n}."""
    counts = dict.fromkeys((level.label for level in Level), 0)
    for finding in findings:
        counts[finding.level.label] += 1
    return counts


@register.filter
def finding_class(finding: Finding) -> str:
    return _CLASSES[finding.level][0]


@register.filter
def finding_badge(finding: Finding) -> str:
    return _CLASSES[finding.level][1]


@register.filter
def minutes(value: timedelta | None) -> int:
    """Whole minutes of a duration, rounded up (a lockout of 90 s reads as 2 minutes)."""
    if value is None:
        return 0
    return -(-int(value.total_seconds()) // 60)


@register.filter
def add_class(field: BoundField, css: str) -> str:
    """Render a form field's widget with extra CSS classes (keeps its other attributes)."""
    classes = f"{field.field.widget.attrs.get('class', '')} {css}".strip()
    if field.errors:
        classes += " is-invalid"
    return field.as_widget(attrs={"class": classes})


@register.filter
def note_text(note: Note) -> str:
    """A simulator note in the user's language."""
    return note.render(gettext)


@register.filter
def visible_whitespace(text: str) -> str:
    """``text`` with every space shown as ␣ and every TAB as ⇥, so two spaces can be seen."""
    return str(text).replace(" ", "␣").replace("\t", "⇥")


@register.filter
def audit_summary(entry: AuditEntry) -> str:
    return audit.entry_summary(entry)


@register.filter
def audit_changes(entry: AuditEntry) -> list[audit.Change] | None:
    return audit.entry_changes(entry)


@register.filter
def part_label(part: str) -> str:
    return audit.part_label(part)


@register.filter
def setting_label(name: str) -> str:
    return audit.field_label(name)


@register.filter
def smtp_path(value: str) -> str:
    """The path as an SMTP command carries it: ``<a@b.jp>``; ``<>`` stays ``<>`` (the null
    sender, not ``<<>>``) and a blank MAIL FROM stays blank, as the tester typed them."""
    if not value or (value.startswith("<") and value.endswith(">")):
        return value
    return f"<{value}>"


@register.inclusion_tag("controlcenter/includes/norelay_advice.html")
def norelay_advice(terminator: str | None = None, link: bool = True) -> dict[str, object]:
    """What the final norelay line costs staff outside the LAN, and the way out: for the
    stored final line, or for ``terminator`` (the one the editor shows); ``link``: point to
    マシンごとの中継 (not on that page itself)."""
    from relaypolicy.models import RelayPolicy

    return {
        "terminator": RelayPolicy.load().terminator if terminator is None else terminator,
        "relay_url": reverse("relaypolicy:machine-relay") if link else "",
    }
