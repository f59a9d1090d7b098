from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from aliases.models import Alias, AliasUpload, LocalDomain
from controlcenter.admin import ReadOnlyAdmin

# Read-only: the alias screens enforce the licence, the domains and the relay checks, and
# record every change.


@admin.register(LocalDomain)
class LocalDomainAdmin(ReadOnlyAdmin):
    list_display = ["name", "comment", "alias_count", "created_at"]
    search_fields = ["name", "comment"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LocalDomain]:
        queryset: QuerySet[LocalDomain] = super().get_queryset(request)
        return queryset.annotate(alias_count=Count("aliases"))

    @admin.display(description="aliases", ordering="alias_count")
    def alias_count(self, obj: LocalDomain) -> int:
        return int(obj.alias_count)  # type: ignore[attr-defined]


@admin.register(Alias)
class AliasAdmin(ReadOnlyAdmin):
    list_display = ["position", "pattern", "target", "option", "comment", "domain", "updated_at"]
    list_filter = ["domain", "option"]
    search_fields = ["pattern", "target", "comment"]
    ordering = ["position"]
    list_select_related = ["domain"]
    show_full_result_count = False


@admin.register(AliasUpload)
class AliasUploadAdmin(ReadOnlyAdmin):
    list_display = ["filename", "user", "encoding", "add_domains", "created_at"]
    list_filter = ["encoding", "add_domains"]
    search_fields = ["filename", "user__username", "sha256"]
    exclude = ["data"]
