from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from aliases.models import Alias, AliasUpload, LocalDomain


@admin.register(LocalDomain)
class LocalDomainAdmin(admin.ModelAdmin[LocalDomain]):
    list_display = ["name", "comment", "alias_count", "created_at"]
    search_fields = ["name", "comment"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LocalDomain]:
        return super().get_queryset(request).annotate(alias_count=Count("aliases"))

    @admin.display(description="aliases", ordering="alias_count")
    def alias_count(self, obj: LocalDomain) -> int:
        return int(obj.alias_count)  # type: ignore[attr-defined]


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin[Alias]):
    """Read-mostly: edits go through the alias screens, which enforce the licence and the
    relay checks; the admin is for inspection and emergency deletion."""

    list_display = ["position", "pattern", "target", "option", "comment", "domain", "updated_at"]
    list_filter = ["domain", "option"]
    search_fields = ["pattern", "target", "comment"]
    ordering = ["position"]
    list_select_related = ["domain"]
    show_full_result_count = False
    readonly_fields = ["position", "pattern", "key", "target", "option", "domain", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AliasUpload)
class AliasUploadAdmin(admin.ModelAdmin[AliasUpload]):
    list_display = ["filename", "user", "encoding", "add_domains", "created_at"]
    list_filter = ["encoding", "add_domains"]
    search_fields = ["filename", "user__username", "sha256"]
    exclude = ["data"]
    readonly_fields = [
        "token", "user", "created_at", "filename", "sha256", "encoding", "add_domains",
        "fingerprint",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
