"""The Django admin (/admin/) is for inspection only.

Every change goes through the control center's screens, whose services validate, lock and
audit it (the last-administrator guard lives on 管理ユーザー, the licence check on 全設定...):
every admin of the project's models, and of users and groups, is read-only.
"""

from typing import Any

import django.contrib.auth.admin  # noqa: F401 - registers User and Group, replaced below
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from controlcenter.models import AuditEntry, Export, ServerSettings


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Visible, never added, changed or deleted here."""

    actions = None

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ServerSettings)
class ServerSettingsAdmin(ReadOnlyAdmin):
    list_display = ["mode", "licence", "accounts", "mailing_lists", "export_dir", "updated_at"]


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
    search_fields = ["username", "dest", "error"]
    exclude = list(Export.BULKY_FIELDS)


# Django's own user and group admins would bypass 管理ユーザー (its last-administrator guard
# and its audit) and the role groups' managed permissions.
User = get_user_model()
for model in (User, Group):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ["username", "last_name", "first_name", "email", "is_active", "last_login"]
    list_filter = ["is_active", "is_staff", "groups"]
    search_fields = ["username", "last_name", "first_name", "email"]
    ordering = ["username"]
    fields = [
        "username",
        ("last_name", "first_name"),
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "last_login",
        "date_joined",
    ]


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ["name"]
    search_fields = ["name"]
    fields = ["name", "permissions"]


# /admin/ is part of the product: its header and titles name it, not "Django administration".
admin.site.site_header = _("E-POST Control Center: Relay Control Center (read-only)")
admin.site.site_title = _("Relay Control Center")
admin.site.index_title = _("Inspection of the stored data")
admin.site.site_url = "/"
