from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LogSourceKind(models.TextChoices):
    UPLOAD = "upload", _("Uploaded files")
    FOLDER = "folder", _("Log folder on this machine")
    COMMAND = "command", _("Command line")


class LogRun(models.Model):
    """One read of gateway logs and what it kept: aggregates, deduplicated sessions, samples."""

    created_at = models.DateTimeField(_("Read at"), default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("Read by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    job_id = models.UUIDField(_("Background job"), null=True, blank=True, unique=True)
    source_kind = models.CharField(_("Source"), max_length=10, choices=LogSourceKind)
    label = models.CharField(_("Files"), max_length=500)
    first_seen = models.CharField(_("From"), max_length=19, blank=True)  # gateway local time
    last_seen = models.CharField(_("To"), max_length=19, blank=True)
    files = models.PositiveIntegerField(_("Files read"), default=0)
    mails = models.PositiveIntegerField(_("Mails"), default=0)
    relayed_outside = models.PositiveIntegerField(_("Relayed from outside"), default=0)
    forged = models.PositiveIntegerField(_("Forged inner senders"), default=0)
    unknown_lines = models.PositiveIntegerField(_("Unknown lines"), default=0)
    sessions_dropped = models.PositiveIntegerField(_("Sessions not kept"), default=0)
    abuse_found = models.BooleanField(_("Abuse found"), default=False)
    inside_basis = models.CharField(max_length=10, default="rules")  # "rules" or "private"
    # Bounded aggregates (see services.run_store): days, hours, lines per log, samples, signs.
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("Log read")
        verbose_name_plural = _("Log reads")

    def __str__(self) -> str:
        return f"{self.label} ({self.first_seen} – {self.last_seen})"

    def section(self, name: str) -> Any:
        return self.summary.get(name, [])


class LogClient(models.Model):
    run = models.ForeignKey(LogRun, on_delete=models.CASCADE, related_name="clients")
    client_ip = models.CharField(_("Client IP"), max_length=45)
    helo = models.CharField(_("HELO"), max_length=255, blank=True)
    inside = models.BooleanField(_("Inside"))
    mails = models.PositiveIntegerField(_("Mails"))
    relayed = models.PositiveIntegerField(_("Relayed"))
    forged = models.PositiveIntegerField(_("Forged inner senders"))

    class Meta:
        ordering = ["-relayed", "-mails", "client_ip"]
        verbose_name = _("Client in a log")
        verbose_name_plural = _("Clients in logs")

    def __str__(self) -> str:
        return self.client_ip


class LogSenderDomain(models.Model):
    run = models.ForeignKey(LogRun, on_delete=models.CASCADE, related_name="sender_domains")
    domain = models.CharField(_("Sender domain"), max_length=255, blank=True)
    mails = models.PositiveIntegerField(_("Mails"))
    relayed = models.PositiveIntegerField(_("Relayed"))
    outside_relayed = models.PositiveIntegerField(_("Relayed from outside"))

    class Meta:
        ordering = ["-outside_relayed", "-mails", "domain"]
        verbose_name = _("Sender domain in a log")
        verbose_name_plural = _("Sender domains in logs")

    def __str__(self) -> str:
        return self.domain


class LogSession(models.Model):
    """One distinct (client IP, sender, recipient) of an inlog, with how often it occurred."""

    run = models.ForeignKey(LogRun, on_delete=models.CASCADE, related_name="sessions")
    client_ip = models.CharField(_("Client IP"), max_length=45)
    sender = models.CharField(_("Sender"), max_length=320, blank=True)
    recipient = models.CharField(_("Recipient"), max_length=320)
    count = models.PositiveIntegerField(_("Mails"))
    relayed = models.BooleanField(_("Relayed"))
    inside = models.BooleanField(_("Inside"))
    first_seen = models.CharField(_("First"), max_length=19)
    last_seen = models.CharField(_("Last"), max_length=19)

    class Meta:
        ordering = ["pk"]
        verbose_name = _("Session in a log")
        verbose_name_plural = _("Sessions in logs")

    def __str__(self) -> str:
        return f"{self.client_ip} {self.sender} -> {self.recipient}"


class LogRecipient(models.Model):
    """An inner-domain address that received mail (inlog) or was delivered to (outlocallog)."""

    run = models.ForeignKey(LogRun, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(_("Address"), max_length=320)
    mails = models.PositiveIntegerField(_("Mails received"))
    delivered = models.PositiveIntegerField(_("Delivered inside"))

    class Meta:
        ordering = ["address"]
        verbose_name = _("Inner address in a log")
        verbose_name_plural = _("Inner addresses in logs")

    def __str__(self) -> str:
        return self.address


class LogFileState(models.Model):
    """How far a file of the configured log folder has been read (incremental reads)."""

    path = models.CharField(_("File"), max_length=1000, unique=True)
    inode = models.BigIntegerField(_("Inode"))
    size = models.BigIntegerField(_("Size"))
    offset = models.BigIntegerField(_("Read up to"))
    lines = models.BigIntegerField(_("Lines read"), default=0)
    updated_at = models.DateTimeField(_("Updated at"), default=timezone.now)

    class Meta:
        ordering = ["path"]
        verbose_name = _("Log file read so far")
        verbose_name_plural = _("Log files read so far")

    def __str__(self) -> str:
        return self.path


class LogUpload(models.Model):
    """Uploaded log files waiting for the background read (kept on disk, not in the database)."""

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    folder = models.CharField(max_length=1000)
    names = models.JSONField(default=list)

    class Meta:
        verbose_name = _("Log upload")
        verbose_name_plural = _("Log uploads")

    def __str__(self) -> str:
        return self.folder
