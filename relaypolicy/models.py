from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from controlcenter.models import SingletonModel
from relaypolicy.table import Row, RowKind


class TerminatorChoice(models.TextChoices):
    NORELAY = "norelay", _("norelay: outside hosts may not relay (SMTP AUTH users may)")
    NORELAY_2 = "norelay,2", _("norelay,2: relaying only after SMTP AUTH")
    NORELAY_0 = "norelay,0", _("norelay,0: no relaying, not even after SMTP AUTH")
    FALSE = "false", _("false: refuse every other host (inbound mail too)")
    OFF = "", _("none (no final line)")


class RelayPolicy(SingletonModel):
    """The parts of effect.dat around the rules: the pinned header and the terminator."""

    header_null = models.CharField(
        _("null sender line"), max_length=255, blank=True, default="#<> default"
    )
    header_blank = models.CharField(
        _("empty sender line"), max_length=255, blank=True, default="#blank false"
    )
    terminator = models.CharField(
        _("final line"),
        max_length=16,
        blank=True,
        choices=TerminatorChoice,
        default=TerminatorChoice.NORELAY,
    )
    terminator_pattern = models.CharField(
        _("final line pattern"),
        max_length=8,
        choices=[("*.*.*.*", "*.*.*.*"), ("*", "*")],
        default="*.*.*.*",
    )
    # Bumped by every save of the table, so a stale editor page cannot overwrite newer rules.
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("relay policy")
        verbose_name_plural = _("relay policy")

    def __str__(self) -> str:
        return str(_("Per-machine relay"))

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(line for line in (self.header_null, self.header_blank) if line)


class RelayRule(models.Model):
    """One row of マシンごとの中継: a rule, a comment line, a blank line or a verbatim line."""

    position = models.PositiveIntegerField(_("position"), db_index=True)
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=[(kind.value, kind.value) for kind in RowKind],
        default=RowKind.RULE.value,
    )
    pattern = models.CharField(_("pattern"), max_length=255, blank=True)
    modifier = models.CharField(_("modifier"), max_length=32, blank=True)
    comment = models.CharField(_("comment"), max_length=255, blank=True)
    outside_site = models.BooleanField(
        _("outside site"),
        default=False,
        help_text=_(
            "A branch office or data centre with a fixed global address that may relay "
            "(社外拠点). Its public addresses are listed on the dashboard."
        ),
    )
    outside_site_note = models.CharField(_("outside site note"), max_length=255, blank=True)
    text = models.CharField(
        _("line as written"),
        max_length=1024,
        blank=True,
        help_text=_("Kept for imported lines written differently from the canonical form."),
    )

    class Meta:
        ordering = ["position"]
        verbose_name = _("relay rule")
        verbose_name_plural = _("relay rules")

    def __str__(self) -> str:
        return " / ".join(self.as_row().lines())

    @classmethod
    def stored_rows(cls) -> tuple[Row, ...]:
        """Every row in order, read as plain values (a table may hold thousands)."""
        kinds = {kind.value: kind for kind in RowKind}
        values = cls.objects.order_by("position").values_list(
            "kind", "pattern", "modifier", "comment", "text", "outside_site", "outside_site_note"
        )
        return tuple(
            Row(kinds[kind], pattern, modifier, comment, text, bool(site), note)
            for kind, pattern, modifier, comment, text, site, note in values
        )

    def as_row(self) -> Row:
        return Row(
            RowKind(self.kind),
            self.pattern,
            self.modifier,
            self.comment,
            self.text,
            outside_site=self.outside_site,
            site_note=self.outside_site_note,
        )
