"""The system menu (システム管理メニュー) and the breadcrumbs that mirror the vendor's screens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class MenuEntry:
    key: str
    label: str | Promise
    description: str | Promise
    url_name: str
    permission: str

    def url(self) -> str | None:
        """The entry's address, or None while its screen does not exist yet."""
        try:
            return reverse(self.url_name)
        except NoReverseMatch:
            return None


SYSTEM_MENU: tuple[MenuEntry, ...] = (
    MenuEntry(
        "settings",
        _("All settings (server environment)"),
        _("Operating mode, licence, accounts, relay restriction and export settings."),
        "controlcenter:settings",
        "controlcenter.view_serversettings",
    ),
    MenuEntry(
        "relay",
        _("Relay restriction"),
        _("Relay restriction settings and the per-machine relay table (effect.dat)."),
        "relaypolicy:restriction",
        "relaypolicy.view_relayrule",
    ),
    MenuEntry(
        "aliases",
        _("Alias management"),
        _("Aliases, licence seats and the CSV upload."),
        "aliases:alias-list",
        "aliases.view_alias",
    ),
    MenuEntry(
        "publish",
        _("Apply settings"),
        _("Export effect.dat and the alias files to the mail daemon, with a diff and history."),
        "controlcenter:publish",
        "controlcenter.view_serversettings",
    ),
    MenuEntry(
        "gateways",
        _("Gateways"),
        _("The mail gateways the settings are delivered to over SSH, and their connection test."),
        "gateways:gateway-list",
        "controlcenter.view_serversettings",
    ),
    MenuEntry(
        "simulate",
        _("Relay test"),
        _("Simulate an SMTP session and run the open-relay self-test."),
        "relaypolicy:simulate",
        "controlcenter.run_simulation",
    ),
    MenuEntry(
        "logs",
        _("Log analysis"),
        _(
            "Read the gateway's logs: signs of relay abuse, replay against the policy, the move "
            "to one alias per address and the retry backlog."
        ),
        "maillogs:index",
        "maillogs.view_logrun",
    ),
    MenuEntry(
        "history",
        _("Change history"),
        _("Who changed what and when."),
        "controlcenter:audit-log",
        "controlcenter.view_serversettings",
    ),
    MenuEntry(
        "jobs",
        _("Background jobs"),
        _("Long work running in the background (log reads, publishing): progress and results."),
        "jobs:list",
        "jobs.view_job",
    ),
    MenuEntry(
        "users",
        _("Admin users"),
        _("Accounts that may log in to this control center, and their roles."),
        "controlcenter:user-list",
        "auth.view_user",
    ),
)


class _User(Protocol):
    def has_perm(self, perm: str, obj: None = None) -> bool: ...


@dataclass(frozen=True)
class MenuItem:
    entry: MenuEntry
    url: str | None
    allowed: bool


def system_menu(user: _User) -> list[MenuItem]:
    return [MenuItem(entry, entry.url(), user.has_perm(entry.permission)) for entry in SYSTEM_MENU]
