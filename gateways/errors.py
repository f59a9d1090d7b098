"""What a gateway's failure says to the administrator, in the administrator's language.

gateways.transport and gateways.smtpcheck stay free of Django: their errors carry a stable
``reason``, where it happened and the underlying system's own words. This module words each
reason through the catalogue; the system's words are added only where the reason alone does
not say what happened.
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

from gateways.transport import TransportError

REASONS = {
    "timeout": gettext_noop("%(where)s: no answer (timed out)"),
    "refused": gettext_noop("%(where)s: the connection was refused (is the service running?)"),
    "unknown_host": gettext_noop("%(where)s: the host name cannot be resolved"),
    "host_unreachable": gettext_noop("%(where)s: the host cannot be reached (no route to it)"),
    "network_unreachable": gettext_noop("%(where)s: the network cannot be reached"),
    "reset": gettext_noop("%(where)s: the gateway closed the connection"),
    "system": gettext_noop("%(where)s: the connection failed (%(detail)s)"),
    "ssh": gettext_noop("%(where)s: the SSH connection failed (%(detail)s)"),
    "no_host_key": gettext_noop("%(where)s presented no host key"),
    "unconfirmed": gettext_noop("%(where)s: the host key has not been confirmed yet"),
    "changed": gettext_noop("%(where)s: the host key changed"),
    "denied": gettext_noop("%(where)s: the gateway refused the login with this key and user"),
    "key_unreadable": gettext_noop("%(where)s: the private key cannot be read (%(detail)s)"),
    "no_key": gettext_noop("%(where)s: no private key is configured"),
    "no_sftp": gettext_noop("%(where)s: the gateway offers no SFTP (%(detail)s)"),
    "no_such_file": gettext_noop("%(where)s: no such file or folder"),
    "permission": gettext_noop("%(where)s: permission denied"),
    "no_space": gettext_noop("%(where)s: no space left on the disk"),
    "sftp": gettext_noop("%(where)s: the file transfer failed (%(detail)s)"),
    "cannot_run": gettext_noop("%(where)s: cannot run %(detail)s"),
}

SMTP_REASONS = {
    "timeout": REASONS["timeout"],
    "refused": REASONS["refused"],
    "unknown_host": REASONS["unknown_host"],
    "host_unreachable": REASONS["host_unreachable"],
    "network_unreachable": REASONS["network_unreachable"],
    "reset": REASONS["reset"],
    "system": REASONS["system"],
    "disconnected": gettext_noop("%(where)s: the SMTP server closed the connection"),
    "greeting": gettext_noop("%(where)s: the SMTP server did not greet (%(detail)s)"),
    "smtp": gettext_noop("%(where)s: the SMTP session failed (%(detail)s)"),
}


def describe(reason: str, *, where: str, detail: str = "", table: dict[str, str] = REASONS) -> str:
    """One line in the active language; an unknown reason keeps the system's words."""
    template = table.get(reason)
    if template is None:
        return f"{where}: {detail}" if detail else where
    return gettext(template) % {"where": where, "detail": detail}


def transport_message(error: TransportError) -> str:
    return describe(error.reason, where=error.where, detail=error.detail)


def smtp_message(where: str, reason: str, detail: str = "") -> str:
    return describe(reason, where=where, detail=detail, table=SMTP_REASONS)
