"""変更履歴: recording who changed what, when and from where.

Services call :func:`audit_record` at the point of change. Who and from where come from the
request being served (:class:`AuditContextMiddleware` keeps them in a context variable; the
address is :func:`controlcenter.clientip.client_ip`, never a header a browser may choose), or
are passed explicitly; outside a request (management commands) the actor is the command line.

Logins are recorded from Django's ``user_logged_in`` / ``user_login_failed`` signals: those
receivers only record, they decide nothing.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from controlcenter.clientip import client_ip
from controlcenter.models import COMMAND_LINE_ACTOR, ActorKind, AuditEntry

# The actor name stored for changes made outside a request; AuditEntry.actor_display shows it
# translated, so the log does not keep an English phrase.
COMMAND_LINE = COMMAND_LINE_ACTOR


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Login failed")
    SETTINGS_CHANGE = "settings.change", _("Settings changed")
    RELAY_SAVE = "relay.save", _("Relay rules saved")
    RELAY_IMPORT = "relay.import", _("effect.dat imported")
    ALIAS_CREATE = "alias.create", _("Alias added")
    ALIAS_UPDATE = "alias.update", _("Alias changed")
    ALIAS_DELETE = "alias.delete", _("Aliases deleted")
    ALIAS_MOVE = "alias.move", _("Alias moved")
    ALIAS_IMPORT = "alias.import", _("Alias CSV imported")
    DOMAIN_CREATE = "domain.create", _("Domain added")
    DOMAIN_DELETE = "domain.delete", _("Domain deleted")
    USER_CREATE = "user.create", _("Admin user added")
    USER_UPDATE = "user.update", _("Admin user changed")
    USER_PASSWORD = "user.password", _("Password set")
    EXPORT = "config.export", _("Settings applied (export)")
    EXPORT_REFUSED = "config.export_refused", _("Export refused")
    EXPORT_FAILED = "config.export_failed", _("Export failed")
    EXPORT_RECOVERED = "config.export_recovered", _("Interrupted export undone")
    ROLLBACK = "config.rollback", _("Rollback")
    ROLLBACK_REFUSED = "config.rollback_refused", _("Rollback refused")
    GATEWAY_ADD = "gateway.add", _("Gateway added")
    GATEWAY_CHANGE = "gateway.change", _("Gateway changed")
    GATEWAY_DELETE = "gateway.delete", _("Gateway deleted")
    GATEWAY_HOST_KEY = "gateway.host_key", _("Gateway host key confirmed")
    GATEWAY_PUBLISH = "gateway.publish", _("Published to the gateways")
    GATEWAY_RETRY = "gateway.retry", _("Publication retried on the failed gateways")


User = AbstractBaseUser | AnonymousUser | None


@dataclass(frozen=True)
class _Context:
    user: Any  # request.user (lazy)
    source_ip: str | None


_current: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "audit_context", default=None
)


@contextmanager
def audit_context(*, user: User, source_ip: str | None) -> Iterator[None]:
    """Attribute the changes made inside the block to ``user`` at ``source_ip``."""
    token = _current.set(_Context(user, source_ip))
    try:
        yield
    finally:
        _current.reset(token)


class AuditContextMiddleware:
    """Remember the request's user and trusted client address for :func:`audit_record`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit_context(user=getattr(request, "user", None), source_ip=client_ip(request)):
            return self.get_response(request)


def _as_text(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines()
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


# The most of a diff an entry stores (characters); the rest is cut, with a note.
DIFF_LIMIT = 64 * 1024


def text_diff(before: object, after: object, *, limit: int = DIFF_LIMIT) -> str:
    lines = difflib.unified_diff(
        _as_text(before), _as_text(after), "before", "after", lineterm="", n=2
    )
    kept: list[str] = []
    size = 0
    for line in lines:
        size += len(line) + 1
        if size > limit:
            kept.append(
                str(_("[truncated: the diff is longer than %(limit)s characters]"))
                % {"limit": limit}
            )
            break
        kept.append(line)
    return "\n".join(kept)


_UNSET: Any = object()


def audit_record(
    *,
    action: str,
    target: str = "",
    summary: str = "",
    before: object = None,
    after: object = None,
    actor: User = _UNSET,
    actor_name: str = "",
    actor_kind: str = ActorKind.COMMAND_LINE,
    source_ip: str | None = _UNSET,
) -> AuditEntry:
    """Append one entry; ``actor`` and ``source_ip`` default to the current request's.

    Without an authenticated actor the entry is in the name of ``actor_name`` (a user) when
    given, else the command line's, or ``actor_kind`` (ActorKind.ANONYMOUS: a failed login).
    """
    context = _current.get()
    if actor is _UNSET:
        actor = context.user if context else None
    if source_ip is _UNSET:
        source_ip = context.source_ip if context else None
    user = actor if actor is not None and actor.is_authenticated else None
    if user is not None:
        actor_kind, actor_name = ActorKind.USER, user.get_username()
    elif actor_name:
        actor_kind = ActorKind.USER
    else:
        actor_name = COMMAND_LINE
    return AuditEntry.objects.create(
        actor=user,  # type: ignore[misc]
        actor_name=actor_name[:150],
        actor_kind=actor_kind,
        source_ip=source_ip or None,
        action=action,
        target=target[:255],
        summary=summary[:500],
        before=before,
        after=after,
        diff=text_diff(before, after),
    )


# --- login signals (connected in ControlCenterConfig.ready) ---------------------------------


def record_login(
    sender: object, request: HttpRequest | None, user: AbstractBaseUser, **kw: Any
) -> None:
    audit_record(
        action=AuditAction.LOGIN,
        target=user.get_username(),
        actor=user,
        source_ip=client_ip(request) if request is not None else None,
    )


def record_login_failed(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kw: Any
) -> None:
    # The attempted name, never the password (Django already masks it in ``credentials``).
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        target=username,
        actor=None,
        actor_kind=ActorKind.ANONYMOUS,
        source_ip=client_ip(request) if request is not None else None,
    )


def _effect_text(table: Any) -> str:
    from relaypolicy.table import render_table

    return "\n".join(render_table(table).lines[1:])  # without the banner


def audit_relay_table(*, action: str, before: Any, after: Any, user: User = None) -> None:
    """Record a change of the relay table (rules, header and terminator) as effect.dat lines."""
    old, new = _effect_text(before), _effect_text(after)
    if old == new and action == AuditAction.RELAY_SAVE:
        return
    summary = ""
    if before.terminator != after.terminator:
        summary = f"terminator: {before.terminator or '-'} -> {after.terminator or '-'}"
    explicit: dict[str, Any] = {} if user is None else {"actor": user}
    audit_record(
        action=action, target="effect.dat", summary=summary, before=old, after=new, **explicit
    )


def alias_state(alias: Any) -> dict[str, object]:
    """An alias (aliases.models.Alias) as recorded in the audit log."""
    return {
        "position": alias.position,
        "pattern": alias.pattern,
        "target": alias.target_text,
        "comment": alias.comment,
    }


# --- reading the log: 変更履歴 and its CSV in the reader's language ----------------------------
# Entries keep what was stored (summaries in the services' own words, JSON with field names),
# so old entries read the same as new ones: the words are translated here, when shown.

PART_LABELS = {
    "settings": _("Server settings"),
    "relay": _("Relay rules and the final line"),
    "domains": _("Local domains"),
    "aliases": _("Aliases"),
}

_FIELD_LABELS = {
    # users (controlcenter.services.users)
    "username": _("User name"),
    "name": _("Name"),
    "email": _("Email address"),
    "role": _("Role"),
    "is_active": _("Active"),
    # aliases (alias_state) and alias CSV imports
    "position": _("Order"),
    "pattern": _("Alias"),
    "target": _("Forward to"),
    "comment": _("Comment"),
    "created": _("Added"),
    "updated": _("Changed"),
    "deleted": _("Deleted"),
    "unchanged": _("Unchanged"),
    "sha256": _("SHA-256 digest"),
    "count": _("Entries"),
    **PART_LABELS,
}

_COUNTS = re.compile(r"\b(created|updated|deleted|unchanged) (\d+)\b")
_TERMINATOR = re.compile(r"^terminator: (.*) -> (.*)$")


def part_label(part: str) -> str:
    """「中継ルールと最終行」 for ``relay``: a part of the policy snapshot, in words."""
    return str(PART_LABELS.get(part, part))


def field_label(name: str) -> str:
    if name in _FIELD_LABELS:
        return str(_FIELD_LABELS[name])
    from django.core.exceptions import FieldDoesNotExist

    from controlcenter.models import ServerSettings

    try:
        return str(getattr(ServerSettings._meta.get_field(name), "verbose_name", name))
    except FieldDoesNotExist:  # not a field: a file name (export hashes), shown as it is
        return name


def entry_summary(entry: AuditEntry) -> str:
    """The entry's summary in the reader's language (stored ones are in the services' words)."""
    summary = entry.summary
    if not summary:
        return ""
    if entry.action in (AuditAction.RELAY_SAVE, AuditAction.RELAY_IMPORT):
        match = _TERMINATOR.match(summary)
        if match:
            return str(_("Final line: %(old)s → %(new)s")) % {
                "old": match[1],
                "new": match[2],
            }
    if entry.action == AuditAction.ALIAS_IMPORT and _COUNTS.search(summary):
        return "、".join(
            str(_("%(what)s: %(count)s")) % {"what": field_label(what), "count": count}
            for what, count in _COUNTS.findall(summary)
        )
    if entry.action == AuditAction.ALIAS_MOVE and summary in ("up", "down"):
        return str(_("Moved up") if summary == "up" else _("Moved down"))
    if entry.action == AuditAction.SETTINGS_CHANGE:
        return "、".join(field_label(name.strip()) for name in summary.split(","))
    if entry.action == AuditAction.ROLLBACK:
        return "、".join(part_label(part.strip()) for part in summary.split(","))
    return summary


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


def _value_text(name: str, value: object) -> str:
    from controlcenter.roles import Role

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if name == "role" and value in Role.values:
        return str(Role(value).label)
    if isinstance(value, dict) and "count" in value:
        return str(_("%(count)s entries")) % {"count": value["count"]}
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
        return value[:12] + "…"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def entry_changes(entry: AuditEntry) -> list[Change] | None:
    """What changed, one labelled row per field, when the entry stored fields (JSON objects);
    None when it stored text (effect.dat lines: its ``diff`` is the readable form)."""
    before, after = entry.before, entry.after
    if not isinstance(before, dict | type(None)) or not isinstance(after, dict | type(None)):
        return None
    if before is None and after is None:
        return None
    old, new = before or {}, after or {}
    return [
        Change(
            field_label(name), _value_text(name, old.get(name)), _value_text(name, new.get(name))
        )
        for name in [*old, *(key for key in new if key not in old)]
        if old.get(name) != new.get(name)
    ]


def changes_text(entry: AuditEntry) -> str:
    """The entry's changes as lines for the CSV: 「ロール: 閲覧者 → 管理者」 or the text diff."""
    changes = entry_changes(entry)
    if changes is None:
        return entry.diff
    return "\n".join(f"{c.label}: {c.before} → {c.after}" for c in changes)
