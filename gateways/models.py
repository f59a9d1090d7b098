"""反映先 (gateways): where an export is delivered, each publication and its per-gateway result."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

DEFAULT_PROGRAM_FOLDER = "/usr/local/mta/bin"
DEFAULT_WORK_FOLDER = "/var/spool/epms"


class GatewayKind(models.TextChoices):
    LOCAL = "local", _("This machine's folder")
    SSH = "ssh", _("SSH")


class PullInterval(models.IntegerChoices):
    OFF = 0, _("Only when asked")
    HOURLY = 1, _("Every hour")
    SIX_HOURS = 6, _("Every 6 hours")
    TWELVE_HOURS = 12, _("Every 12 hours")
    DAILY = 24, _("Every day")


class Gateway(models.Model):
    """One mail gateway the policy is published to (a primary, a backup MX, a cluster node)."""

    name = models.CharField(pgettext_lazy("gateway", "Name"), max_length=100, unique=True)
    kind = models.CharField(
        _("Kind"), max_length=8, choices=GatewayKind.choices, default=GatewayKind.LOCAL
    )
    enabled = models.BooleanField(_("Enabled"), default=True)
    host = models.CharField(_("Host"), max_length=255, blank=True)
    port = models.PositiveIntegerField(_("SSH port"), default=22)
    username = models.CharField(_("User"), max_length=64, blank=True)
    # The private key, encrypted with a key derived from SECRET_KEY (gateways.keys); never shown.
    key_encrypted = models.TextField(blank=True, editable=False)
    key_path = models.CharField(_("Key file"), max_length=1024, blank=True)
    program_folder = models.CharField(
        _("Program folder"), max_length=1024, default=DEFAULT_PROGRAM_FOLDER
    )
    work_folder = models.CharField(
        _("Mail work folder"), max_length=1024, default=DEFAULT_WORK_FOLDER
    )
    smtp_port = models.PositiveIntegerField(_("SMTP port"), default=25)
    # The pinned host key (OpenSSH public key line) and its SHA256 fingerprint.
    host_key = models.TextField(_("Host key"), blank=True, editable=False)
    host_key_fingerprint = models.CharField(
        _("Host key fingerprint"), max_length=100, blank=True, editable=False
    )
    host_key_confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)
    host_key_confirmed_by = models.CharField(max_length=150, blank=True, editable=False)
    # The key the server presented that is not (yet) pinned: waiting for confirmation.
    offered_host_key = models.TextField(blank=True, editable=False)
    offered_fingerprint = models.CharField(max_length=100, blank=True, editable=False)
    offered_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last pull of the logs and the retry queue over SFTP (gateways.logs).
    logs_pulled_at = models.DateTimeField(null=True, blank=True, editable=False)
    retry_queue = models.JSONField(default=dict, blank=True, editable=False)
    # Pulling the logs on a schedule: every this many hours (0: only on demand); the queued
    # job of the next pull, which each pull replaces with the one after it.
    logs_pull_hours = models.PositiveSmallIntegerField(
        _("Pull the logs automatically"), choices=PullInterval.choices, default=PullInterval.OFF
    )
    logs_pull_job_id = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Gateway")
        verbose_name_plural = _("Gateways")

    def __str__(self) -> str:
        return self.name

    @property
    def is_ssh(self) -> bool:
        return self.kind == GatewayKind.SSH

    @property
    def has_key(self) -> bool:
        return bool(self.key_encrypted or self.key_path)

    @property
    def key_changed(self) -> bool:
        """The server presented a key other than the pinned one."""
        return bool(self.host_key and self.offered_host_key)

    @property
    def address(self) -> str:
        if not self.is_ssh:
            return str(_("this machine"))
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.username}@{host}:{self.port}"


class PublicationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    PARTIAL = "partial", _("Partly failed")
    FAILED = "failed", _("Failed")
    REFUSED = "refused", _("Refused (errors)")


class Publication(models.Model):
    """One policy published to several gateways as one export (number shared with 履歴)."""

    number = models.PositiveIntegerField(_("Number"), unique=True)
    created_at = models.DateTimeField(_("Date"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(_("User name"), max_length=150, blank=True)
    status = models.CharField(
        _("Status"), max_length=16, choices=PublicationStatus.choices, default="queued"
    )
    snapshot = models.JSONField(default=dict, editable=False)
    fingerprints = models.JSONField(default=dict, editable=False)
    findings = models.JSONField(default=list, editable=False)
    export = models.OneToOneField(
        "controlcenter.Export",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="publication",
    )
    job_id = models.UUIDField(null=True, blank=True, editable=False)
    error = models.TextField(_("Error"), blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("Publication to gateways")
        verbose_name_plural = _("Publications to gateways")

    def __str__(self) -> str:
        return f"#{self.number} {self.status}"

    def latest_results(self) -> list[GatewayResult]:
        """The last attempt per gateway, in gateway order."""
        latest: dict[Any, GatewayResult] = {}
        for result in self.results.select_related("gateway").order_by("attempt", "pk"):
            latest[result.gateway_name] = result
        return sorted(latest.values(), key=lambda r: r.gateway_name)

    @property
    def failed_results(self) -> list[GatewayResult]:
        return [r for r in self.latest_results() if r.status == ResultStatus.FAILED]


class ResultStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class GatewayResult(models.Model):
    """What one attempt to publish to one gateway did: the progress row, then the outcome."""

    publication = models.ForeignKey(Publication, on_delete=models.CASCADE, related_name="results")
    gateway = models.ForeignKey(
        Gateway, null=True, on_delete=models.SET_NULL, related_name="results"
    )
    gateway_name = models.CharField(_("Gateway"), max_length=100)
    address = models.CharField(_("Address"), max_length=300, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    force = models.BooleanField(default=False)
    status = models.CharField(
        _("Status"), max_length=16, choices=ResultStatus.choices, default="queued"
    )
    stage = models.CharField(_("Stage"), max_length=200, blank=True)
    error = models.TextField(_("Error"), blank=True)
    drift = models.JSONField(default=list)
    daemon_lines = models.JSONField(default=list)
    replaced = models.JSONField(default=dict)
    diff = models.JSONField(default=dict)
    hashes = models.JSONField(default=dict)
    verified = models.BooleanField(default=False)
    recovered = models.CharField(max_length=300, blank=True)
    script_status = models.IntegerField(null=True, blank=True)
    script_output = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gateway_name", "attempt"]

    def __str__(self) -> str:
        return f"{self.gateway_name} #{self.attempt} {self.status}"


class SmtpCheck(models.Model):
    """One 接続テスト: SMTP probes against the gateways compared with the simulator."""

    created_at = models.DateTimeField(_("Date"), default=timezone.now, db_index=True)
    username = models.CharField(_("User name"), max_length=150, blank=True)
    publication = models.ForeignKey(
        Publication, null=True, blank=True, on_delete=models.SET_NULL, related_name="checks"
    )
    status = models.CharField(
        _("Status"), max_length=16, choices=PublicationStatus.choices, default="queued"
    )
    job_id = models.UUIDField(null=True, blank=True, editable=False)
    # Per gateway: {"gateway", "address", "client_ip", "tls", "error", "probes": [...]}.
    results = models.JSONField(default=list)
    mismatches = models.PositiveIntegerField(default=0)
    dangerous = models.PositiveIntegerField(default=0)
    error = models.TextField(_("Error"), blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("Connection test")
        verbose_name_plural = _("Connection tests")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.status}"
