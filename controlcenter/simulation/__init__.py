"""The relay decision: what the gateway answers to one SMTP session, without Django.

``compile_policy`` indexes effect.dat, the aliases and the managed local domains once;
``evaluate_session`` then answers MAIL FROM and every RCPT TO of a :class:`Session` exactly as
the exported files would make the daemon behave (``../shared/spec/epost-relay.md`` §3, §7).

Classes of address
==================

Every address is read strictly by :func:`controlcenter.smtppath.parse_path` (a source route is
ignored: the final mailbox decides; the domain is lower-cased and loses one trailing dot) and
then classified:

==============  ===========================================================================
local-existing  an alias matches it (first match in storage order), or the recipient is the
                RFC 5321 special ``<postmaster>``
local-unknown   its domain is a managed local domain, but no alias matches
external        anything else: other domains, look-alikes (``notdomain.jp``,
                ``domain.jp.evil.example``, subdomains) and IP literals (``[192.0.2.1]``)
null / empty    the senders ``<>`` and an empty ``MAIL FROM:``; both behave as external
==============  ===========================================================================

The decision
============

1. **MAIL FROM.** An unparsable path is refused with ``501``. Otherwise the first effect.dat
   line matching the client IP or the envelope sender decides (no match means ``default``);
   ``false`` refuses here. A refused MAIL FROM makes every recipient ``reject`` (stage ``mail``).
2. **RCPT TO**, each recipient on its own, checked in this order:

   a. an unparsable path: ``501``;
   b. a local-unknown recipient: ``550 5.1.1``, whatever the modifier and AUTH;
   c. ``true`` (also a bare pattern, and ``only``): local-existing → deliver, external → relay;
   d. the built-in table, for ``default``, ``norelay``, ``norelay,1``, ``norelay,2``,
      ``norelay,0``, an unrecognised modifier and no match at all. *A* is "SMTP AUTH succeeded
      and the modifier is not ``norelay,0``":

      =====================  ==================  ========================================
      sender \\ recipient     local-existing      external
      =====================  ==================  ========================================
      local-existing         deliver             relay under ``default`` or with *A*,
                                                 else refused (``550 5.7.1``)
      local-unknown          deliver with *A*,   relay with *A*, else refused
                             else refused        (``550 5.7.1``)
                             (``550 5.1.0``)
      external, null, empty  deliver             relay with *A*, else refused (``550 5.7.1``)
      =====================  ==================  ========================================

Where the vendor is silent the simulator takes the reading under which **more** mail is
accepted and relayed (spec §3.1), and says so in a note:

- a sender without a domain (``<spamtest>``, ``<host!user>``) is accepted at MAIL FROM, is
  external for the built-in table and is matched by ``#nodomain`` lines (note
  ``nodomain-sender``); a recipient without a domain is refused as local-unknown
  (``550 5.1.1``, note ``nodomain-recipient``), except ``<postmaster>``, which is delivered;
- the ``*`` of a partial wildcard alias matches zero or more characters: ``2009*@domain.jp``
  matches ``2009@domain.jp`` (note ``empty-wildcard``);
- an authenticated session counts as a known sender, so it may relay and deliver under
  ``true``, ``default`` and ``norelay`` whatever its sender's class (not under ``norelay,0``,
  where AUTH changes nothing);
- quotes that are not needed are removed before matching: ``"alice"@domain.jp`` is
  ``alice@domain.jp`` (note ``quoted``);
- an address literal (``[192.0.2.1]``) is a domain "without a dot" and "all digits", so it is
  matched by ``#host`` and ``#number`` (note ``literal-keyword``);
- ``<IP> false`` lines the daemon appended below a final ``norelay`` catch-all are simulated
  above it, where the export puts them (note ``appended``); any other tail stays below;
- client addresses are compared as Python writes them (RFC 5952 for IPv6, no leading zeros),
  also by wildcard lines, which compare text (note ``client-text`` when the input differed);
- ``only`` is simulated as ``true`` for the sessions it matches (the manuals disagree).

``<postmaster>`` is a local-existing recipient; the sender given to effect.dat's sender lines
is the parsed final mailbox (``User@Domain.JP.`` matches ``domain.jp``).

Replies
=======

All wording is the simulator's own (ours), except the ``false`` reply, which is the vendor's::

    250 2.1.0 Sender OK                                         MAIL accepted
    501 5.1.7 Bad sender address syntax                         MAIL path unparsable
    550 5.1.7 Please, mail from a valid IP or Domain address.   MAIL refused by ``false`` (doc)
    503 5.5.1 Need MAIL command                                 RCPT after a refused MAIL FROM
    501 5.1.3 Bad recipient address syntax                      RCPT path unparsable
    250 2.1.5 Recipient OK                                      deliver or relay
    550 5.1.1 User unknown                                      local-unknown recipient
    550 5.1.0 Sender address rejected: User unknown             local-unknown sender, local rcpt
    550 5.7.1 Relaying denied                                   external recipient refused

Worked example (the vendor's hardened file; the domain ``example.co.jp`` has the wildcard alias
``*@example.co.jp -> *@example.co.jp``)::

    1  #<> default
    2  #blank false
    3  192.168.1.0/24 default
    4  *.*.*.* norelay

    client 203.0.113.50, MAIL FROM:<anyone@example.co.jp>      accept, line 4 (norelay)
      RCPT TO:<victim@relay-test.invalid>                       reject 550 5.7.1 Relaying denied
      RCPT TO:<boss@example.co.jp>                              deliver (local-existing)
      RCPT TO:<victim%relay-test.invalid@example.co.jp>         deliver, with the note that
                                                                the inner server decides
    client 192.168.1.20, same sender and first recipient        relay (line 3, default table:
                                                                the sender is local-existing)

Without line 4, the outside client matches nothing, the built-in table applies and the forged
sender relays: the open relay of the seed. Notes (:class:`Note`) explain such details; their
codes are stable, their messages are English templates for the web layer to translate:

- about an address: ``syntax``, ``source-route``, ``quoted``, ``trailing-dot``, ``ip-literal``,
  ``lookalike``, ``postmaster``, ``postmaster-alias``, ``mailserver``, ``nodomain-sender``,
  ``nodomain-recipient``, ``empty-wildcard``, ``literal-keyword``, and ``routing`` (a
  delivered local part still holding ``%``, ``!``, ``@`` or quotes: the inner server decides);
- about the session: ``client-ip``, ``client-text``, ``no-match``, ``false``,
  ``ignored-modifier``, ``only``, ``appended``, ``mail-refused``;
- about a verdict: ``trusted``, ``forgeable-sender``, ``auth``, ``auth-ignored``,
  ``unknown-sender``.

A :class:`Policy` caches what each distinct address, sender and client IP means, so a batch
pays for parsing and alias lookup once per address (each cache is bounded by ``CACHE_LIMIT``),
and remembers each distinct answer, so a repeated one costs a few dict probes.

Modules: :mod:`.results` (what is answered), :mod:`.notes` (the remarks), :mod:`.classify`
(what an address means), :mod:`.policy` (the compiled policy and its indexes), :mod:`.decide`
(the decision above).
"""

from controlcenter.simulation.decide import answer_session, evaluate_session
from controlcenter.simulation.notes import Note, Translate
from controlcenter.simulation.policy import CACHE_LIMIT, Policy, canonical_client, compile_policy
from controlcenter.simulation.results import (
    REPLY_FALSE,
    REPLY_NEED_MAIL,
    REPLY_RECIPIENT_OK,
    REPLY_RELAY_DENIED,
    REPLY_SENDER_OK,
    REPLY_SENDER_UNKNOWN,
    REPLY_USER_UNKNOWN,
    AddressClass,
    AliasRef,
    MailResult,
    MailVerdict,
    RcptResult,
    RcptVerdict,
    Reason,
    RuleRef,
    Session,
    SessionResult,
    Stage,
)

__all__ = [
    "CACHE_LIMIT",
    "REPLY_FALSE",
    "REPLY_NEED_MAIL",
    "REPLY_RECIPIENT_OK",
    "REPLY_RELAY_DENIED",
    "REPLY_SENDER_OK",
    "REPLY_SENDER_UNKNOWN",
    "REPLY_USER_UNKNOWN",
    "AddressClass",
    "AliasRef",
    "MailResult",
    "MailVerdict",
    "Note",
    "Policy",
    "RcptResult",
    "RcptVerdict",
    "Reason",
    "RuleRef",
    "Session",
    "SessionResult",
    "Stage",
    "Translate",
    "answer_session",
    "canonical_client",
    "compile_policy",
    "evaluate_session",
]
