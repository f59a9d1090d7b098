from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from controlcenter.roles import Role, role_permissions

AVAILABLE = [
    ("relaypolicy", "relayrule", "view_relayrule"),
    ("relaypolicy", "relayrule", "change_relayrule"),
    ("controlcenter", "serversettings", "run_simulation"),
    ("controlcenter", "serversettings", "publish_config"),
    ("controlcenter", "auditentry", "view_auditentry"),
    ("controlcenter", "auditentry", "delete_auditentry"),
    ("auth", "user", "change_user"),
    ("auth", "user", "view_user"),
    ("sessions", "session", "delete_session"),
]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            Role.VIEWER,
            {
                "relaypolicy.view_relayrule",
                "controlcenter.run_simulation",
                "controlcenter.view_auditentry",
            },
        ),
        (
            Role.EDITOR,
            {
                "relaypolicy.view_relayrule",
                "relaypolicy.change_relayrule",
                "controlcenter.run_simulation",
                "controlcenter.view_auditentry",
            },
        ),
        (
            Role.ADMINISTRATOR,
            {
                "relaypolicy.view_relayrule",
                "relaypolicy.change_relayrule",
                "controlcenter.run_simulation",
                "controlcenter.publish_config",
                "controlcenter.view_auditentry",
                "auth.change_user",
                "auth.view_user",
            },
        ),
    ],
)
def test_roles_follow_the_rules_and_nobody_may_edit_the_audit_log(
    role: Role, expected: set[str]
) -> None:
    assert role_permissions(role, AVAILABLE) == expected


@pytest.mark.django_db
def test_the_migrations_created_the_three_groups() -> None:
    assert sorted(Group.objects.values_list("name", flat=True)) == [
        "administrator",
        "editor",
        "viewer",
    ]
