from __future__ import annotations

import json
import lzma
from pathlib import Path
from typing import Any, Self

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from controlcenter.findings import Finding, Level
from controlcenter.publishing import FILE_NAMES


class OperatingMode(models.TextChoices):
    GATEWAY = "gateway", _("SMTP gateway")
    MAILSERVER = "mailserver", _("Mail server")
    BOTH = "both", _("Both (mail server and SMTP gateway)")


class Licence(models.TextChoices):
    USERS_50 = "50", _("50 users")
    USERS_100 = "100", _("100 users")
    USERS_250 = "250", _("250 users")
    USERS_500 = "500", _("500 users")
    USERS_1000 = "1000", _("1000 users")
    USERS_2000 = "2000", _("2000 users")
    USERS_3000 = "3000", _("3000 users")
    USERS_5000 = "5000", _("5000 users")
    USERS_10000 = "10000", _("10000 users")
    UNLIMITED = "unlimited", _("Unlimited edition")


class LineEnding(models.TextChoices):
    LF = "lf", _("LF (Linux)")
    CRLF = "crlf", _("CRLF (Windows)")


class SingletonModel(models.Model):
    """A table with exactly one row (pk 1), created on first use."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> Self:
        obj, _created = cls._default_manager.get_or_create(pk=1)
        return obj


class ServerSettings(SingletonModel):
    """全設定(サーバー環境設定): the one row of server-wide settings."""

    # What 全設定 edits, configure changes, and an export snapshot keeps.
    EDITABLE_FIELDS = (
        "mode",
        "licence",
        "accounts",
        "mailing_lists",
        "max_message_size",
        "max_recipients",
        "outside_site_limit",
        "export_dir",
        "export_line_ending",
        "console_folder",
        "console_command",
        "console_mode_word",
    )
    # Where an administrator's export writes and what the root-run script calls: only users
    # with controlcenter.change_export_settings (administrators) change them on 全設定.
    EXPORT_SETTINGS_FIELDS = (
        "export_dir",
        "console_folder",
        "console_command",
        "console_mode_word",
    )

    mode = models.CharField(
        _("Operating mode"),
        max_length=16,
        choices=OperatingMode,
        default=OperatingMode.GATEWAY,
        help_text=_(
            "The basic setting “Forward all received mail to the SMTP gateway”. "
            "A gateway needs the norelay line at the end of effect.dat."
        ),
    )
    licence = models.CharField(
        _("Licence"), max_length=16, choices=Licence, default=Licence.USERS_50
    )
    accounts = models.PositiveIntegerField(
        _("Mailbox accounts"),
        default=1,
        validators=[MaxValueValidator(1_000_000)],
        help_text=_("A gateway needs at least one (dummy) account."),
    )
    mailing_lists = models.PositiveIntegerField(
        _("Mailing lists"),
        default=0,
        validators=[MaxValueValidator(1_000_000)],
        help_text=_("Each uses a licence seat, like accounts and aliases."),
    )
    max_message_size = models.PositiveBigIntegerField(
        _("Maximum message size"),
        default=0,
        validators=[MaxValueValidator(10 * 1024**3)],
        help_text=_("In bytes; 0 means unlimited."),
    )
    max_recipients = models.PositiveIntegerField(
        _('Accept "CC,BCC" (multiple recipients)'),
        default=0,
        validators=[MaxValueValidator(100_000)],
        help_text=_(
            "Refuse a message when its recipients reach this number; 0 turns the limit off."
        ),
    )
    outside_site_limit = models.PositiveIntegerField(
        _("Outside site limit"),
        default=256,
        validators=[MinValueValidator(1), MaxValueValidator(65_536)],
        help_text=_(
            "The most public addresses one declared outside site (社外拠点) of マシンごとの中継 "
            "may hold; a larger one is an error."
        ),
    )
    export_dir = models.CharField(
        _("Export folder"),
        max_length=255,
        blank=True,
        help_text=_(
            "Where publishing writes effect.dat and the alias files; blank: the default folder. "
            "A folder that does not exist yet is created by the first export."
        ),
    )
    export_line_ending = models.CharField(
        _("Line ending"), max_length=4, choices=LineEnding, default=LineEnding.LF
    )
    console_folder = models.CharField(
        _("Console command folder"), max_length=255, default="/usr/local/mta/bin"
    )
    console_command = models.CharField(
        _("Alias registration command"), max_length=64, default="./epstman"
    )
    console_mode_word = models.CharField(
        _("Registration mode word (mode=)"), max_length=16, default="NA"
    )
    updated_at = models.DateTimeField(_("Updated at"), auto_now=True)
    # Counts the alias and domain writes (aliases.services._lock_aliases): with the highest
    # alias id and update time it identifies the alias table's state without scanning it.
    alias_revision = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("Server settings")
        verbose_name_plural = _("Server settings")
        permissions = [
            ("run_simulation", "Can run relay simulations and the self-test"),
            ("publish_config", "Can publish the configuration to the mail daemon"),
            (
                "change_export_settings",
                "Can change the export folder and the alias registration command",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Server settings"))

    @property
    def is_gateway(self) -> bool:
        """Gateway and combined modes both need the norelay terminator."""
        return self.mode in (OperatingMode.GATEWAY, OperatingMode.BOTH)

    @property
    def licence_limit(self) -> int | None:
        return None if self.licence == Licence.UNLIMITED else int(self.licence)

    @property
    def newline(self) -> str:
        return "\r\n" if self.export_line_ending == LineEnding.CRLF else "\n"

    @property
    def export_path(self) -> Path:
        return Path(self.export_dir) if self.export_dir else Path(settings.CC_EXPORT_DIR)


class AppendOnlyError(Exception):
    """An attempt to change or delete a row of an append-only log."""


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """Rows can be added and read; ``update()`` and ``delete()`` refuse."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model.__name__} rows cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model.__name__} rows cannot be deleted")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{type(self).__name__} rows cannot be deleted")


class ExportStatus(models.TextChoices):
    EXPORTED = "exported", _("Exported")
    REFUSED = "refused", _("Refused (errors)")
    FAILED = "failed", _("Failed (nothing changed)")


class Export(AppendOnlyModel):
    """One run of 設定の反映: what was rendered, from which policy, and what happened."""

    number = models.PositiveIntegerField(_("Number"), unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("User"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(_("User name"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("Date"), default=timezone.now, db_index=True)
    status = models.CharField(_("Status"), max_length=16, choices=ExportStatus)
    dest = models.CharField(_("Folder"), max_length=1024)
    # files, snapshot and replaced (properties below) are stored together in ``archive``,
    # LZMA-compressed JSON: megabytes at 100,000 aliases become a few hundred kilobytes.
    # Exports recorded before keep them in these JSON columns.
    files_json = models.JSONField(_("Files"), default=dict, blank=True, db_column="files")
    hashes = models.JSONField(_("SHA-256"), default=dict)
    drift = models.JSONField(_("Drift"), default=list)
    daemon_lines = models.JSONField(_("Daemon lines"), default=list)
    findings = models.JSONField(_("Findings"), default=list)
    selftest = models.JSONField(_("Self-test"), default=dict)
    snapshot_json = models.JSONField(
        _("Policy snapshot"), default=dict, blank=True, db_column="snapshot"
    )
    rollback_of = models.ForeignKey(
        "self",
        verbose_name=_("Rollback of"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    error = models.TextField(_("Error"), blank=True)
    # The deployed text of the files this export overwrote although they were changed by hand.
    replaced_json = models.JSONField(
        _("Files replaced"), default=dict, blank=True, db_column="replaced"
    )
    archive = models.BinaryField(_("Archive"), default=bytes, blank=True, editable=False)
    # A digest per part of ``snapshot`` (services.policy_fingerprints), so that "unexported
    # changes" is known without loading the whole policy; empty in exports made before.
    fingerprints = models.JSONField(default=dict, blank=True, editable=False)
    # What changed against the export before it, per part (services.snapshot_delta), so that
    # 履歴 lists "rules +2 −1, aliases +5" without loading the snapshots; empty before.
    changes = models.JSONField(_("Changes"), default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("Export")
        verbose_name_plural = _("Exports")

    def __str__(self) -> str:
        return f"#{self.number} {self.status}"

    # What ``defer()`` leaves out on lists: the bulky parts.
    BULKY_FIELDS = ("archive", "files_json", "snapshot_json", "replaced_json")

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.pop("_archived_dirty", False):
            parts = {name: self._part(name) for name in ("files", "snapshot", "replaced")}
            raw = json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")
            self.archive = lzma.compress(raw, preset=1)
        super().save(*args, **kwargs)

    def _archived(self) -> dict[str, Any]:
        cached: dict[str, Any] | None = self.__dict__.get("_archived_parts")
        if cached is None:
            raw = bytes(self.archive or b"")
            cached = json.loads(lzma.decompress(raw)) if raw else {}
            self.__dict__["_archived_parts"] = cached
        return cached

    def _part(self, name: str) -> Any:
        parts = self._archived()
        return parts[name] if name in parts else getattr(self, f"{name}_json")

    def _set_part(self, name: str, value: Any) -> None:
        parts = self._archived()
        parts[name] = value
        self.__dict__["_archived_dirty"] = True

    @property
    def files(self) -> dict[str, str]:
        """Text of each file written (or that would have been), by name."""
        value: dict[str, str] = self._part("files")
        return value

    @files.setter
    def files(self, value: dict[str, str]) -> None:
        self._set_part("files", value)

    @property
    def snapshot(self) -> dict[str, Any]:
        """The policy the files were rendered from (services.export.policy_snapshot)."""
        value: dict[str, Any] = self._part("snapshot")
        return value

    @snapshot.setter
    def snapshot(self, value: dict[str, Any]) -> None:
        self._set_part("snapshot", value)

    @property
    def replaced(self) -> dict[str, str]:
        """The deployed text of the files this export overwrote although changed by hand."""
        value: dict[str, str] = self._part("replaced")
        return value

    @replaced.setter
    def replaced(self, value: dict[str, str]) -> None:
        self._set_part("replaced", value)

    def file_list(self) -> list[tuple[str, str, str]]:
        """(name, text, sha256) in the order the files are written (jsonb reorders keys)."""
        order = {name: index for index, name in enumerate(FILE_NAMES)}
        names = sorted(self.files, key=lambda name: (order.get(name, len(order)), name))
        return [(name, self.files[name], self.hashes.get(name, "")) for name in names]

    def finding_list(self) -> list[Finding]:
        """The findings at the time, to render in the reader's language (exports written
        before the untranslated message was kept show the stored English message)."""
        return [
            Finding(
                Level[str(item["level"]).upper()],
                str(item["code"]),
                str(item.get("template", item["message"])),
                line=item.get("line"),
                hint=str(item.get("hint_template", item.get("hint", ""))),
                obj=str(item.get("object", "")),
                params=tuple(sorted(dict(item.get("params") or {}).items())),
            )
            for item in self.findings
        ]

    def replaced_list(self) -> list[tuple[str, str]]:
        """(name, deployed text) of the files changed by hand that this export replaced."""
        return [(name, self.replaced[name]) for name in FILE_NAMES if name in self.replaced]


# Stored as the actor name of changes made outside a request (management commands); shown
# translated. Entries written before it was introduced hold the English literal.
COMMAND_LINE_ACTOR = ""
LEGACY_COMMAND_LINE_ACTOR = "(command line)"


class ActorKind(models.TextChoices):
    USER = "user", _("User")
    COMMAND_LINE = "command_line", _("Command line")
    ANONYMOUS = "anonymous", _("Not signed in")


class AuditEntry(AppendOnlyModel):
    """変更履歴: one change, import, export, rollback or login; never changed or deleted."""

    created_at = models.DateTimeField(_("Date"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("User"),
        null=True,
        blank=True,
        # Deleting a user never rewrites the append-only log: the id stays, unconstrained.
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(_("User name"), max_length=150, blank=True, db_index=True)
    actor_kind = models.CharField(
        _("Actor kind"),
        max_length=16,
        choices=ActorKind.choices,
        default=ActorKind.USER,
        db_index=True,
    )
    source_ip = models.GenericIPAddressField(_("Source IP address"), null=True, blank=True)
    action = models.CharField(_("Action"), max_length=32, db_index=True)
    target = models.CharField(_("Target"), max_length=255, blank=True)
    summary = models.CharField(_("Summary"), max_length=500, blank=True)
    before = models.JSONField(_("Before"), null=True, blank=True)
    after = models.JSONField(_("After"), null=True, blank=True)
    diff = models.TextField(_("Diff"), blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("Audit entry")
        verbose_name_plural = _("Audit log")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_display} {self.action}"

    @property
    def is_command_line(self) -> bool:
        return self.actor_kind == ActorKind.COMMAND_LINE

    @property
    def actor_display(self) -> str:
        """Who, as shown on 変更履歴 and in its CSV (the command line in the user's language).

        Based on ``actor_kind`` only: a failed login's attempted name (in ``target``) can never
        pass for the command line or for a user.
        """
        if self.actor_kind == ActorKind.COMMAND_LINE:
            return str(_("(command line)"))
        if self.actor_kind == ActorKind.ANONYMOUS:
            return str(_("(not signed in)"))
        return self.actor_name
