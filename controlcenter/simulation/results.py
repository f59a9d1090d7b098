"""What the simulator answers: a session in, one result for MAIL FROM and one per RCPT TO.

Every result is a frozen value: the simulator hands out the same object for the same answer
(see :mod:`controlcenter.simulation.decide`), so nothing may mutate one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

from aliases.aliasfile import AliasKind, AliasMatch
from controlcenter.simulation.notes import Note, Translate, identity
from controlcenter.smtppath import Mailbox
from relaypolicy.effectfile import Modifier

MailVerdict = Literal["accept", "reject"]
RcptVerdict = Literal["relay", "deliver", "reject"]
Stage = Literal["mail", "rcpt"]

REPLY_SENDER_OK: Final = "250 2.1.0 Sender OK"
REPLY_FALSE: Final = "550 5.1.7 Please, mail from a valid IP or Domain address."
REPLY_NEED_MAIL: Final = "503 5.5.1 Need MAIL command"
REPLY_RECIPIENT_OK: Final = "250 2.1.5 Recipient OK"
REPLY_USER_UNKNOWN: Final = "550 5.1.1 User unknown"
REPLY_SENDER_UNKNOWN: Final = "550 5.1.0 Sender address rejected: User unknown"
REPLY_RELAY_DENIED: Final = "550 5.7.1 Relaying denied"


class AddressClass(StrEnum):
    LOCAL_EXISTING = "local-existing"
    LOCAL_UNKNOWN = "local-unknown"
    EXTERNAL = "external"
    NULL = "null"
    EMPTY = "empty"
    INVALID = "invalid"


class Reason(StrEnum):
    """Why a verdict was given: a stable key for the UI and the self-test."""

    ACCEPTED = "accepted"
    SYNTAX = "syntax"
    REFUSED = "refused"  # a false line at MAIL FROM
    MAIL_REFUSED = "mail-refused"  # a recipient after a refused MAIL FROM
    UNKNOWN_RECIPIENT = "unknown-recipient"
    TRUSTED = "trusted"  # a true (bare, only) line
    LOCAL_RECIPIENT = "local-recipient"
    LOCAL_SENDER = "local-sender"  # relayed by the built-in table's local-sender row
    AUTH = "auth"
    UNKNOWN_SENDER = "unknown-sender"
    RELAY_DENIED = "relay-denied"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The effect.dat line that decided: its 1-based number and its text as written."""

    line: int
    text: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True, slots=True)
class AliasRef:
    """The alias that made an address local: its pattern, the rewritten target, its position."""

    pattern: str
    target: str
    position: int
    wildcard: bool = False

    @classmethod
    def of(cls, match: AliasMatch) -> AliasRef:
        return cls(
            match.alias.pattern,
            match.target_text,
            match.position,
            match.alias.kind is not AliasKind.EXACT,
        )

    def as_dict(self) -> dict[str, object]:
        return {"pattern": self.pattern, "target": self.target, "position": self.position}


@dataclass(frozen=True, slots=True)
class Session:
    """One SMTP session: ``mail_from`` ``"<>"`` is the null sender, ``""`` an empty MAIL FROM."""

    client_ip: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    auth: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "client_ip": self.client_ip,
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_to),
            "auth": self.auth,
        }


@dataclass(frozen=True, slots=True)
class MailResult:
    verdict: MailVerdict
    reply: str
    rule: RuleRef | None
    sender_class: AddressClass = AddressClass.EXTERNAL
    modifier: Modifier | None = None  # the effective modifier; None when no line was consulted
    alias: AliasRef | None = None
    mailbox: Mailbox | None = None
    notes: tuple[Note, ...] = ()
    reason: Reason = Reason.ACCEPTED
    #: ``as_dict()`` as JSON, once a batch has written it (:mod:`.batch`); not part of the value.
    json_text: str | None = field(default=None, init=False, repr=False, compare=False)

    def as_dict(self, translate: Translate = identity) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "reply": self.reply,
            "rule": self.rule.as_dict() if self.rule else None,
            "notes": [note.render(translate) for note in self.notes],
            "class": self.sender_class.value,
            "modifier": self.modifier.value if self.modifier is not None else None,
            "mailbox": self.mailbox.address if self.mailbox is not None else None,
            "alias": self.alias.as_dict() if self.alias else None,
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class RcptResult:
    address: str
    verdict: RcptVerdict
    reply: str
    rule: RuleRef | None
    alias: AliasRef | None = None
    notes: tuple[Note, ...] = ()
    stage: Stage = "rcpt"
    address_class: AddressClass = AddressClass.EXTERNAL
    mailbox: Mailbox | None = None
    reason: Reason = Reason.RELAY_DENIED
    #: ``as_dict()`` as JSON, once a batch has written it (:mod:`.batch`); not part of the value.
    json_text: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def note_codes(self) -> tuple[str, ...]:
        return tuple(note.code for note in self.notes)

    def as_dict(self, translate: Translate = identity) -> dict[str, object]:
        return {
            "address": self.address,
            "verdict": self.verdict,
            "reply": self.reply,
            "rule": self.rule.as_dict() if self.rule else None,
            "notes": [note.render(translate) for note in self.notes],
            "stage": self.stage,
            "class": self.address_class.value,
            "alias": self.alias.as_dict() if self.alias else None,
            "mailbox": self.mailbox.address if self.mailbox is not None else None,
            "reason": self.reason.value,
        }


@dataclass(frozen=True, slots=True)
class SessionResult:
    session: Session
    mail: MailResult
    rcpt: tuple[RcptResult, ...]

    @property
    def relayed(self) -> tuple[RcptResult, ...]:
        """The recipients accepted for an outside destination."""
        return tuple(result for result in self.rcpt if result.verdict == "relay")

    def as_dict(self, translate: Translate = identity) -> dict[str, object]:
        """The ``simulate_relay`` JSON shape of ``../shared/spec/cli.md`` (plus extra keys)."""
        return {
            "mail": self.mail.as_dict(translate),
            "rcpt": [result.as_dict(translate) for result in self.rcpt],
        }
