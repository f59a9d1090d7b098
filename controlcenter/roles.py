"""The three roles, as auth groups whose permissions follow from rules.

- 閲覧者 (viewer): view everything, run simulations.
- 編集者 (editor): also add, change and delete relay rules, aliases and settings.
- 管理者 (administrator): also publish exports, change the export settings and manage users.

Rules rather than lists, so a model added by a later migration is covered as soon
as that app's migration calls :func:`sync_role_groups`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _

MANAGED_APPS = ("controlcenter", "relaypolicy", "aliases", "jobs", "maillogs")
# Records that nobody may edit through the web (the audit log is append-only).
READ_ONLY_MODELS = frozenset({"auditentry", "export"})
# Permissions reserved to administrators: publishing, and choosing where an export writes and
# which command the root-run registration script calls.
ADMIN_ONLY = frozenset({"controlcenter.publish_config", "controlcenter.change_export_settings"})
USER_PERMISSIONS = ("add_user", "change_user", "delete_user", "view_user", "view_group")


class Role(TextChoices):
    VIEWER = "viewer", _("Viewer")
    EDITOR = "editor", _("Editor")
    ADMINISTRATOR = "administrator", _("Administrator")


def role_permissions(role: Role, available: list[tuple[str, str, str]]) -> set[str]:
    """``app.codename`` strings granted to ``role``, from (app, model, codename) triples."""
    granted: set[str] = set()
    for app, model, codename in available:
        full = f"{app}.{codename}"
        if app == "auth":
            if role is Role.ADMINISTRATOR and codename in USER_PERMISSIONS:
                granted.add(full)
            continue
        if app not in MANAGED_APPS:
            continue
        if codename.startswith("view_") or codename == "run_simulation":
            granted.add(full)
        elif full in ADMIN_ONLY:
            if role is Role.ADMINISTRATOR:
                granted.add(full)
        elif role is not Role.VIEWER and model not in READ_ONLY_MODELS:
            granted.add(full)
    return granted


def sync_role_groups(apps: Any, schema_editor: Any = None) -> None:
    """Create the role groups and (re)grant their permissions (data migrations, test flushes)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make them now.
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True  # migration states have none
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = original

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    permissions = list(
        permission_model.objects.select_related("content_type").filter(
            content_type__app_label__in=(*MANAGED_APPS, "auth")
        )
    )
    available = [(p.content_type.app_label, p.content_type.model, p.codename) for p in permissions]
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in permissions}
    for role in Role:
        group, _created = group_model.objects.get_or_create(name=role.value)
        group.permissions.set([by_name[name] for name in role_permissions(role, available)])
