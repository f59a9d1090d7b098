"""The decision of the package docstring, remembered per distinct answer.

A session's answer depends on few things: the client's deciding line and notes (a
:class:`ClientView`), the sender text, AUTH, and each recipient text. The MAIL answer is kept
per view and sender; the RCPT step depends on the sender only through its class and notes, so
its state (a :class:`Decider`, or a :class:`Refusal` after a refused MAIL FROM) is interned and
keeps the result per recipient text. A warm session costs a few dict probes; the first time
an answer is needed it is computed exactly as the rules say, from the cached classification
of each address (:class:`~controlcenter.simulation.policy.Policy`).
"""

from __future__ import annotations

from collections.abc import Sequence

from controlcenter.simulation.classify import Address
from controlcenter.simulation.notes import (
    NOTE_APPENDED,
    NOTE_AUTH,
    NOTE_AUTH_IGNORED,
    NOTE_BAD_CLIENT,
    NOTE_CLIENT_TEXT,
    NOTE_FALSE,
    NOTE_FORGEABLE,
    NOTE_IGNORED_MODIFIER,
    NOTE_MAIL_REFUSED,
    NOTE_NO_MATCH,
    NOTE_ONLY,
    NOTE_TRUSTED,
    NOTE_UNKNOWN_SENDER,
    Note,
    make_note,
)
from controlcenter.simulation.policy import Answers, Policy, canonical_client, is_ip
from controlcenter.simulation.results import (
    REPLY_FALSE,
    REPLY_NEED_MAIL,
    REPLY_RECIPIENT_OK,
    REPLY_RELAY_DENIED,
    REPLY_SENDER_OK,
    REPLY_SENDER_UNKNOWN,
    REPLY_USER_UNKNOWN,
    AddressClass,
    MailResult,
    RcptResult,
    RcptVerdict,
    Reason,
    RuleRef,
    Session,
    SessionResult,
)
from relaypolicy.effectfile import EffectLine, Modifier


def evaluate_session(policy: Policy, session: Session) -> SessionResult:
    """The gateway's answer to MAIL FROM and to each RCPT TO of ``session``; never raises."""
    mail, rcpt = answer_session(
        policy, session.client_ip, session.mail_from, session.rcpt_to, session.auth
    )
    return SessionResult(session, mail, rcpt)


def answer_session(
    policy: Policy, client_ip: str, mail_from: str, rcpt_to: Sequence[str], auth: bool
) -> tuple[MailResult, tuple[RcptResult, ...]]:
    """:func:`evaluate_session` without the session around it, for callers that evaluate many
    (the results are the same objects each time the same answer is given)."""
    answers = policy._answers
    view = answers.views.get(client_ip) or _view(policy, answers, client_ip)
    entry = view.mails.get(mail_from) or _mail(policy, answers, view, mail_from)
    step = (entry.auth or entry.authenticated(answers)) if auth else entry.plain
    results = step.results
    return entry.mail, tuple(
        [results.get(text) or step.answer(policy, answers, text) for text in rcpt_to]
    )


class ClientView:
    """What a client address brings to MAIL FROM: its client line and notes. Interned, so
    every client with the same line and notes shares the MAIL answers kept here by sender."""

    __slots__ = ("line", "mails", "notes")

    def __init__(self, line: EffectLine | None, notes: tuple[Note, ...]) -> None:
        self.line = line
        self.notes = notes
        self.mails: dict[str, MailAnswer] = {}


class MailAnswer:
    """The MAIL FROM result of one client view and sender, and the RCPT step after it
    without SMTP AUTH and, once a session has needed it, with."""

    __slots__ = ("auth", "mail", "modifier", "plain", "sender")

    def __init__(
        self,
        mail: MailResult,
        plain: Step,
        auth: Step | None = None,
        sender: Address | None = None,
        modifier: Modifier = Modifier.DEFAULT,
    ) -> None:
        self.mail = mail
        self.plain = plain
        self.auth = auth
        self.sender = sender
        self.modifier = modifier

    def authenticated(self, answers: Answers) -> Step:
        """The RCPT step with SMTP AUTH (few sessions authenticate: built when first asked)."""
        if self.auth is None:
            assert self.sender is not None  # an accepted MAIL FROM keeps its sender
            self.auth = _decider(answers, self.sender, self.modifier, self.mail.rule, auth=True)
        return self.auth


def _view(policy: Policy, answers: Answers, client_ip: str) -> ClientView:
    line = policy._client_line(client_ip)
    notes: tuple[Note, ...] = ()
    if not is_ip(client_ip):
        notes = (make_note("client-ip", NOTE_BAD_CLIENT, client=client_ip),)
    elif canonical_client(client_ip) != client_ip:
        canonical = canonical_client(client_ip)
        notes = (make_note("client-text", NOTE_CLIENT_TEXT, canonical=canonical),)
    key = (line.number if line is not None else 0, notes)
    view = answers.views_by_key.get(key)
    if view is None:
        view = answers.views_by_key[key] = ClientView(line, notes)
    answers.views[client_ip] = view
    answers.grew()
    return view


def _mail(policy: Policy, answers: Answers, view: ClientView, mail_from: str) -> MailAnswer:
    sender, sender_line = policy._sender(mail_from)
    if sender.cls is AddressClass.INVALID:
        mail = MailResult(
            "reject",
            sender.reply,
            None,
            sender_class=AddressClass.INVALID,
            notes=sender.notes,
            reason=Reason.SYNTAX,
        )
        refusal = _refusal(answers, mail)
        entry = MailAnswer(mail, refusal, refusal)
    else:
        line = view.line
        if sender_line is not None and (line is None or sender_line.number < line.number):
            line = sender_line
        modifier, rule, line_notes = _line(policy, answers, line)
        notes = sender.notes + view.notes + line_notes
        refused = modifier is Modifier.FALSE
        mail = MailResult(
            "reject" if refused else "accept",
            REPLY_FALSE if refused else REPLY_SENDER_OK,
            rule,
            sender_class=sender.cls,
            modifier=modifier,
            alias=sender.alias,
            mailbox=sender.mailbox,
            notes=notes,
            reason=Reason.REFUSED if refused else Reason.ACCEPTED,
        )
        if refused:
            refusal = _refusal(answers, mail)
            entry = MailAnswer(mail, refusal, refusal)
        else:
            plain = _decider(answers, sender, modifier, rule, auth=False)
            entry = MailAnswer(mail, plain, None, sender, modifier)
    view.mails[mail_from] = entry
    answers.grew()
    return entry


def _line(
    policy: Policy, answers: Answers, line: EffectLine | None
) -> tuple[Modifier, RuleRef | None, tuple[Note, ...]]:
    """The effective modifier of the deciding ``line``, its reference and the notes it
    brings to MAIL FROM (after the sender's and the client's)."""
    number = line.number if line is not None else 0
    kept = answers.lines.get(number)
    if kept is None:
        modifier = line.effective if line is not None else Modifier.DEFAULT
        rule = RuleRef(line.number, line.text) if line is not None else None
        notes: list[Note] = []
        if line is not None and line.number in policy._appended:
            notes.append(make_note("appended", NOTE_APPENDED, line=line.number, text=line.text))
        notes.extend(_rule_notes(line, modifier))
        kept = answers.lines[number] = (modifier, rule, tuple(notes))
    return kept


def _rule_notes(line: EffectLine | None, modifier: Modifier) -> list[Note]:
    if line is None:
        return [make_note("no-match", NOTE_NO_MATCH)]
    if modifier is Modifier.FALSE:
        return [make_note("false", NOTE_FALSE, line=line.number, text=line.text)]
    if modifier is Modifier.ONLY:
        return [make_note("only", NOTE_ONLY, line=line.number)]
    if modifier is Modifier.DEFAULT and line.modifier is not Modifier.DEFAULT:
        return [
            make_note("ignored-modifier", NOTE_IGNORED_MODIFIER, line=line.number, text=line.text)
        ]
    return []


class Refusal:
    """The RCPT step after a refused MAIL FROM: every recipient ``503``, stage ``mail``."""

    __slots__ = ("notes", "results", "rule")

    def __init__(self, mail: MailResult) -> None:
        self.rule = mail.rule
        self.notes = (make_note("mail-refused", NOTE_MAIL_REFUSED, reply=mail.reply),)
        self.results: dict[str, RcptResult] = {}

    def answer(self, policy: Policy, answers: Answers, text: str) -> RcptResult:
        rcpt = policy._recipient(text)
        result = self.results[text] = RcptResult(
            text,
            "reject",
            REPLY_NEED_MAIL,
            self.rule,
            alias=rcpt.alias,
            notes=self.notes,
            stage="mail",
            address_class=rcpt.cls,
            mailbox=rcpt.mailbox,
            reason=Reason.MAIL_REFUSED,
        )
        answers.grew()
        return result


def _refusal(answers: Answers, mail: MailResult) -> Refusal:
    key = (mail.rule, mail.reply)
    refusal = answers.refusals.get(key)
    if refusal is None:
        refusal = answers.refusals[key] = Refusal(mail)
    return refusal


_TRUSTING = frozenset({Modifier.TRUE, Modifier.ONLY})


def _decider(
    answers: Answers, sender: Address, modifier: Modifier, rule: RuleRef | None, *, auth: bool
) -> Decider:
    """Step 2 of the decision for an accepted MAIL FROM, interned by what it depends on."""
    authenticated = auth and modifier is not Modifier.NORELAY_0
    # None: trusted (true, bare, only); True: the built-in table's local-sender row relays.
    table: bool | None = None
    relay_notes: tuple[Note, ...] = ()
    unknown_sender_notes: tuple[Note, ...] = ()
    denied_notes: tuple[Note, ...] = ()
    if modifier in _TRUSTING:
        if rule is not None:
            relay_notes = (make_note("trusted", NOTE_TRUSTED, line=rule.line, text=rule.text),)
    else:
        table = modifier is Modifier.DEFAULT and sender.cls is AddressClass.LOCAL_EXISTING
        if authenticated:
            relay_notes = (make_note("auth", NOTE_AUTH),)
        elif table:
            alias = sender.alias.pattern if sender.alias else ""
            relay_notes = (
                make_note("forgeable-sender", NOTE_FORGEABLE, sender=sender.key, alias=alias),
            )
        if sender.cls is AddressClass.LOCAL_UNKNOWN:
            unknown_sender_notes = (
                make_note(
                    "unknown-sender", NOTE_UNKNOWN_SENDER, sender=sender.key, domain=sender.domain
                ),
            )
        if auth and modifier is Modifier.NORELAY_0:
            denied_notes = (make_note("auth-ignored", NOTE_AUTH_IGNORED),)
    key = (rule, table, authenticated, relay_notes, unknown_sender_notes, denied_notes)
    decider = answers.deciders.get(key)
    if decider is None:
        decider = answers.deciders[key] = Decider(
            rule, table, authenticated, relay_notes, unknown_sender_notes, denied_notes
        )
    return decider


class Decider:
    """Step 2 of the decision, applied to each recipient after an accepted MAIL FROM.

    The notes that depend only on the session are built once, not per recipient; the result
    for each recipient text is kept.
    """

    __slots__ = (
        "authenticated",
        "denied_notes",
        "relay_notes",
        "results",
        "rule",
        "table",
        "unknown_sender_notes",
    )

    def __init__(
        self,
        rule: RuleRef | None,
        table: bool | None,
        authenticated: bool,
        relay_notes: tuple[Note, ...],
        unknown_sender_notes: tuple[Note, ...],
        denied_notes: tuple[Note, ...],
    ) -> None:
        self.rule = rule
        self.table = table
        self.authenticated = authenticated
        self.relay_notes = relay_notes
        self.unknown_sender_notes = unknown_sender_notes
        self.denied_notes = denied_notes
        self.results: dict[str, RcptResult] = {}

    def answer(self, policy: Policy, answers: Answers, text: str) -> RcptResult:
        result = self.results[text] = self.decide(text, policy._recipient(text))
        answers.grew()
        return result

    def decide(self, text: str, rcpt: Address) -> RcptResult:
        cls = rcpt.cls
        if cls is AddressClass.INVALID:
            return self._result(text, rcpt, "reject", rcpt.reply, Reason.SYNTAX, rule=False)
        if cls is AddressClass.LOCAL_UNKNOWN:
            return self._result(
                text, rcpt, "reject", REPLY_USER_UNKNOWN, Reason.UNKNOWN_RECIPIENT, rule=False
            )
        local = cls is AddressClass.LOCAL_EXISTING
        if self.table is None:
            if local:
                return self._deliver(text, rcpt, Reason.TRUSTED)
            return self._result(
                text, rcpt, "relay", REPLY_RECIPIENT_OK, Reason.TRUSTED, self.relay_notes
            )
        if self.unknown_sender_notes and not self.authenticated:
            reply = REPLY_SENDER_UNKNOWN if local else REPLY_RELAY_DENIED
            return self._result(
                text, rcpt, "reject", reply, Reason.UNKNOWN_SENDER, self.unknown_sender_notes
            )
        if local:
            return self._deliver(text, rcpt, Reason.LOCAL_RECIPIENT)
        if self.authenticated or self.table:
            reason = Reason.AUTH if self.authenticated else Reason.LOCAL_SENDER
            return self._result(text, rcpt, "relay", REPLY_RECIPIENT_OK, reason, self.relay_notes)
        return self._result(
            text, rcpt, "reject", REPLY_RELAY_DENIED, Reason.RELAY_DENIED, self.denied_notes
        )

    def _deliver(self, text: str, rcpt: Address, reason: Reason) -> RcptResult:
        extra = (rcpt.routing,) if rcpt.routing is not None else ()
        return self._result(text, rcpt, "deliver", REPLY_RECIPIENT_OK, reason, extra)

    def _result(
        self,
        text: str,
        rcpt: Address,
        verdict: RcptVerdict,
        reply: str,
        reason: Reason,
        extra: tuple[Note, ...] = (),
        *,
        rule: bool = True,
    ) -> RcptResult:
        return RcptResult(  # positionally: a dataclass takes these faster than keywords
            text,
            verdict,
            reply,
            self.rule if rule else None,
            rcpt.alias,
            rcpt.notes + extra if extra else rcpt.notes,
            "rcpt",
            rcpt.cls,
            rcpt.mailbox,
            reason,
        )


Step = Decider | Refusal
