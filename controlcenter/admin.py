from typing import Any

from django.contrib import admin

from controlcenter.models import AuditEntry, Export, ServerSettings


@admin.register(ServerSettings)
class ServerSettingsAdmin(admin.ModelAdmin[ServerSettings]):
    list_display = ["mode", "licence", "accounts", "mailing_lists", "export_dir", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request: object) -> bool:
        return not ServerSettings.objects.exists()

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Append-only records: visible, never added, changed or deleted here."""

    actions = None

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "source_ip", "action", "target", "summary"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target", "summary"]
    date_hierarchy = "created_at"


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = ["number", "created_at", "username", "status", "dest"]
    list_filter = ["status"]
    exclude = ["files", "snapshot"]
