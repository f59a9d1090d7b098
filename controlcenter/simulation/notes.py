"""The simulator's notes: a stable code and an English ``%``-template per remark.

The templates are marked for translation here and rendered by the web layer in the site
language; ``simulate_relay --json`` keeps them in English.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from controlcenter.findings import gettext_noop as _

Translate = Callable[[str], str]


def identity(message: str) -> str:
    return message


@dataclass(frozen=True, slots=True)
class Note:
    """A remark on a verdict: ``code`` is stable, ``message`` an English ``%``-template.

    ``nested`` names the params that are templates themselves (a parser's reason), translated
    along with the message.
    """

    code: str
    message: str
    params: tuple[tuple[str, object], ...] = ()
    nested: tuple[str, ...] = ()

    def render(self, translate: Translate = identity) -> str:
        template = translate(self.message)
        if not self.params:
            return template
        values = dict(self.params)
        for name in self.nested:
            values[name] = translate(str(values[name]))
        return template % values

    def __str__(self) -> str:
        return self.render()


def make_note(code: str, message: str, *, nested: tuple[str, ...] = (), **params: object) -> Note:
    return Note(code, message, tuple(sorted(params.items())), nested)


NOTE_ROUTING: Final = _(
    "the local part %(local)s still contains routing characters (%(chars)s) and was accepted "
    "by alias %(alias)s: the inner server decides what happens next"
)
NOTE_SOURCE_ROUTE: Final = _(
    "the source route %(route)s was ignored: the final mailbox %(mailbox)s decides"
)
NOTE_POSTMASTER: Final = _("<postmaster> is the RFC 5321 special recipient: it is a local address")
NOTE_POSTMASTER_ALIAS: Final = _(
    "RFC 5321 requires %(address)s to be accepted: add an alias for it"
)
NOTE_IP_LITERAL: Final = _(
    "the IP-literal domain %(domain)s is never a managed local domain: treated as external"
)
NOTE_LOOKALIKE: Final = _(
    "%(domain)s only looks like the managed domain %(local)s: domains compare exactly, "
    "so it is external"
)
NOTE_TRAILING_DOT: Final = _("the trailing dot was removed: %(domain)s is compared as %(normal)s")
NOTE_QUOTED: Final = _("the quoted local part was read as %(local)s")
NOTE_PARSE: Final = _("unreadable path: %(reason)s")
NOTE_MAIL_REFUSED: Final = _("MAIL FROM was refused (%(reply)s), so no recipient is accepted")
NOTE_FALSE: Final = _("line %(line)s `%(text)s` refuses the session at MAIL FROM")
NOTE_NO_MATCH: Final = _("no effect.dat line matches: the built-in table (default) applies")
NOTE_IGNORED_MODIFIER: Final = _(
    "line %(line)s `%(text)s` acts as default: the daemon does not recognise its modifier "
    "or separator"
)
NOTE_ONLY: Final = _(
    "line %(line)s uses `only`, which the vendor's manuals describe inconsistently: "
    "simulated as true"
)
NOTE_BAD_CLIENT: Final = _("%(client)s is not an IP address: only wildcard lines can match it")
NOTE_FORGEABLE: Final = _(
    "relayed because the sender %(sender)s is local through alias %(alias)s: "
    "anyone can forge a local sender"
)
NOTE_TRUSTED: Final = _("line %(line)s `%(text)s` trusts the session: it may relay anywhere")
NOTE_AUTH: Final = _("relayed because the session is SMTP-authenticated")
NOTE_AUTH_IGNORED: Final = _("norelay,0 refuses relaying even after SMTP AUTH")
NOTE_UNKNOWN_SENDER: Final = _(
    "the sender %(sender)s is in the managed domain %(domain)s but matches no alias: "
    "the built-in table refuses it"
)
NOTE_NODOMAIN_SENDER: Final = _(
    "the sender %(sender)s has no domain: accepted at MAIL FROM and treated as external, "
    "matched by #nodomain lines (where the vendor is silent, the simulator takes the reading "
    "under which more mail is accepted)"
)
NOTE_NODOMAIN_RECIPIENT: Final = _(
    "the recipient %(rcpt)s has no domain: refused as an unknown local user"
)
NOTE_EMPTY_WILDCARD: Final = _(
    "alias %(alias)s matched %(address)s with its * standing for no characters (where the "
    "vendor is silent, the simulator takes the reading under which more mail is accepted)"
)
NOTE_LITERAL_KEYWORD: Final = _(
    "the address-literal domain %(domain)s counts as a domain without a dot (#host) and as all "
    "digits (#number), the reading under which more mail is accepted"
)
NOTE_APPENDED: Final = _(
    "line %(line)s `%(text)s` was appended by the daemon below the final line; it is simulated "
    "above it, where the export puts it"
)
NOTE_CLIENT_TEXT: Final = _(
    "the client address is compared as %(canonical)s (wildcard lines compare the address as text)"
)
NOTE_MAILSERVER: Final = _(
    "in mail-server mode a mailbox account may exist for %(address)s; the simulator knows "
    "aliases only"
)
