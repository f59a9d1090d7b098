"""管理ユーザー: logins, their one role, and the last-administrator guard."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from controlcenter.audit import AuditAction, audit_record
from controlcenter.roles import Role

User = get_user_model()


def user_role(user: AbstractUser) -> Role | None:
    """The user's role: superusers are administrators; otherwise the strongest group."""
    if user.is_superuser:
        return Role.ADMINISTRATOR
    names = {group.name for group in user.groups.all()}
    for role in (Role.ADMINISTRATOR, Role.EDITOR, Role.VIEWER):
        if role.value in names:
            return role
    return None


def _active_administrators() -> Any:
    return User.objects.filter(is_active=True).filter(is_superuser=True) | User.objects.filter(
        is_active=True, groups__name=Role.ADMINISTRATOR.value
    )


def _lock_administrators(user: AbstractUser) -> None:
    """Lock ``user`` and every active administrator's row, in one order (no deadlock).

    Two administrators demoting each other at once would otherwise both see the other one
    still there and leave none; the second now waits and then sees the first one's change.
    """
    ids = set(_active_administrators().values_list("pk", flat=True)) | {user.pk}
    list(User.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))


def _set_role(user: AbstractUser, role: Role) -> None:
    group = Group.objects.get(name=role.value)
    user.groups.remove(*Group.objects.filter(name__in=Role.values).exclude(pk=group.pk))
    user.groups.add(group)
    # Only administrators reach the Django admin (/admin/), and only for their permissions.
    is_staff = role is Role.ADMINISTRATOR or user.is_superuser
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        user.save(update_fields=["is_staff"])


@transaction.atomic
def user_create(*, username: str, password: str | None, role: Role, **fields: Any) -> AbstractUser:
    """Create a login with one role; ``password=None`` leaves it unusable. User names are
    unique regardless of case (``Admin`` is taken when ``admin`` exists)."""
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(
            {"username": _("A user with that user name already exists (ignoring case).")},
            code="unique",
        )
    user = User(username=username, **fields)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    _set_role(user, role)
    _audit_user(AuditAction.USER_CREATE, user, None, _user_state(user))
    return user


def _user_state(user: AbstractUser) -> dict[str, object]:
    role = user_role(user)
    return {
        "username": user.get_username(),
        "name": f"{user.last_name} {user.first_name}".strip(),
        "email": user.email,
        "role": role.value if role else None,
        "is_active": user.is_active,
    }


def _audit_user(
    action: str, user: AbstractUser, before: dict[str, object] | None, after: object
) -> None:
    audit_record(action=action, target=user.get_username(), before=before, after=after)


@transaction.atomic
def user_update(*, user: AbstractUser, role: Role, is_active: bool, **fields: Any) -> AbstractUser:
    """Change a login's details and role; refuses to leave no active administrator."""
    _lock_administrators(user)
    stored = User.objects.get(pk=user.pk)
    before = _user_state(stored)
    was_admin = stored.is_active and user_role(stored) is Role.ADMINISTRATOR
    stays_admin = is_active and (user.is_superuser or role is Role.ADMINISTRATOR)
    if was_admin and not stays_admin and not _active_administrators().exclude(pk=user.pk).exists():
        raise ValidationError(
            _("%(user)s is the last active administrator: appoint another one first.")
            % {"user": user.get_username()},
            code="last_administrator",
        )
    for name, value in fields.items():
        setattr(user, name, value)
    user.is_active = is_active
    user.save()
    _set_role(user, role)
    _audit_user(AuditAction.USER_UPDATE, user, before, _user_state(user))
    return user


def user_set_password(*, user: AbstractUser, password: str) -> None:
    """Set a login's password (already validated by the caller's form) and audit it."""
    user.set_password(password)
    user.save(update_fields=["password"])
    _audit_user(AuditAction.USER_PASSWORD, user, None, None)


def administrators_exist() -> bool:
    return bool(_active_administrators().exists())


def password_problems(password: str, *, username: str) -> list[str]:
    """Why ``password`` is refused by AUTH_PASSWORD_VALIDATORS for ``username`` ([] if fine)."""
    existing = User.objects.filter(username__iexact=username).first()
    try:
        validate_password(password, existing or User(username=username))
    except ValidationError as error:
        return list(error.messages)
    return []


@transaction.atomic
def administrator_restore(*, username: str, password: str | None) -> AbstractUser:
    """Make the existing login ``username`` an active administrator again (audited), and set
    its password when one is given: the repair when no administrator is left."""
    user = User.objects.get(username__iexact=username)
    user_update(user=user, role=Role.ADMINISTRATOR, is_active=True)
    if password is not None:
        user_set_password(user=user, password=password)
    return user
