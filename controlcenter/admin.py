from django.contrib import admin

from controlcenter.models import ServerSettings


@admin.register(ServerSettings)
class ServerSettingsAdmin(admin.ModelAdmin[ServerSettings]):
    list_display = ["mode", "licence", "accounts", "mailing_lists", "export_dir", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request: object) -> bool:
        return not ServerSettings.objects.exists()

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
