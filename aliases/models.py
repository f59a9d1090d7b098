from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aliases import aliasfile


class AliasOption(models.TextChoices):
    NONE = "", _("(none)")
    KEEP = "0", _(",0: keep the envelope recipient")
    REWRITE = "1", _(",1: always rewrite the envelope recipient")


class LocalDomain(models.Model):
    """A local domain managed here: only its addresses may be aliased."""

    name = models.CharField(_("Domain"), max_length=253, unique=True)
    comment = models.CharField(_("Comment"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("Created at"), default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Local domain")
        verbose_name_plural = _("Local domains")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(name=Lower("name")), name="aliases_localdomain_lower_case"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Alias(models.Model):
    """エイリアス → 実アドレス; aliases match first to last by ``position``."""

    position = models.PositiveIntegerField(_("Order"))
    pattern = models.CharField(_("Alias"), max_length=320)
    # The case-folded pattern (aliasfile.Alias.key): duplicates are refused by the database too.
    key = models.CharField(max_length=320, unique=True, editable=False)
    target = models.CharField(_("Real address"), max_length=320)
    option = models.CharField(
        _("Option"), max_length=1, blank=True, choices=AliasOption, default=AliasOption.NONE
    )
    comment = models.CharField(_("Comment"), max_length=255, blank=True)
    domain = models.ForeignKey(
        LocalDomain, verbose_name=_("Domain"), on_delete=models.PROTECT, related_name="aliases"
    )
    # Set by every write service; its maximum is part of the table's fingerprint.
    updated_at = models.DateTimeField(_("Updated at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["position"]
        verbose_name = _("Alias")
        verbose_name_plural = _("Aliases")
        indexes = [
            models.Index(fields=["position"], name="aliases_alias_position"),
            models.Index(fields=["domain", "position"], name="aliases_alias_domain_position"),
        ]

    def __str__(self) -> str:
        return f"{self.pattern} -> {self.target_text}"

    @property
    def target_text(self) -> str:
        return f"{self.target},{self.option}" if self.option else self.target

    def as_entry(self) -> aliasfile.Alias:
        return aliasfile.Alias(self.pattern, self.target, self.option, self.comment)


class AliasUpload(models.Model):
    """An uploaded CSV kept between its preview and the confirmation, so that exactly the
    previewed bytes are imported; ``fingerprint`` is the alias table's state at preview time."""

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    filename = models.CharField(max_length=255, blank=True)
    data = models.BinaryField()
    # Bytes held for the user's quota: the file's, or the findings report's when refused.
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    encoding = models.CharField(max_length=8)
    add_domains = models.BooleanField(default=False)
    fingerprint = models.CharField(max_length=64)
    # A file with errors is not kept: only its findings report, for the download link.
    refused = models.BooleanField(default=False)
    findings_csv = models.BinaryField(default=b"", blank=True)

    class Meta:
        verbose_name = _("Alias CSV upload")
        verbose_name_plural = _("Alias CSV uploads")

    def __str__(self) -> str:
        return f"{self.filename} ({self.created_at:%Y-%m-%d %H:%M})"
