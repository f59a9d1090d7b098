from __future__ import annotations

from django.contrib import admin

from controlcenter.admin import ReadOnlyAdmin
from gateways.models import Gateway, Publication


# Read-only: the screens validate, encrypt keys, pin host keys and audit.
@admin.register(Gateway)
class GatewayAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "enabled", "host", "port", "username", "host_key_fingerprint"]
    exclude = ["key_encrypted"]


@admin.register(Publication)
class PublicationAdmin(ReadOnlyAdmin):
    list_display = ["number", "created_at", "username", "status"]
    exclude = ["snapshot"]
