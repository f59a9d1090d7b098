from __future__ import annotations

from django.contrib import admin

from controlcenter.admin import ReadOnlyAdmin
from relaypolicy.models import RelayPolicy, RelayRule


# Read-only: マシンごとの中継 validates the whole table and records the change.
@admin.register(RelayRule)
class RelayRuleAdmin(ReadOnlyAdmin):
    list_display = ["position", "kind", "pattern", "modifier", "comment", "text"]
    list_filter = ["kind", "modifier"]
    search_fields = ["pattern", "comment", "text"]
    ordering = ["position"]


@admin.register(RelayPolicy)
class RelayPolicyAdmin(ReadOnlyAdmin):
    list_display = [
        "terminator",
        "terminator_pattern",
        "header_null",
        "header_blank",
        "version",
        "updated_at",
        "updated_by",
    ]
    list_select_related = ["updated_by"]
