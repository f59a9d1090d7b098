"""What is wrong or risky in an effect.dat, as findings with effect.dat line numbers.

``validate_rules(effect, gateway_mode=..., aliases=..., outside_sites=..., outside_site_limit=...)``
never raises and is near-linear in lines + aliases. ``gateway_mode`` is True for the operating
modes "gateway" and "both": there the file itself must stop outside hosts from relaying.
``aliases`` decide whether ``default`` is dangerous: with any alias, every real address is a
local sender that anyone can forge, so the built-in table relays for it. ``outside_sites`` are
the line numbers of rows declared 社外拠点 (a branch office or data centre with a fixed global
address). Every finding about a line carries that line's number; findings about the file as a
whole (a missing line) have ``line=None``.

Address-space reasoning (:mod:`relaypolicy.addrspace`): for each client-IP line, the addresses
that reach it (its range minus everything matched above it, ``*`` prefixes as exact ranges) and
the public part of them (``ipaddress``'s ``is_global``). A line **lets outside clients relay**
when public addresses reach it and its effective modifier is trusted (bare, ``true``, ``only``)
or ``default`` while aliases exist; that is an error unless the row is a declared outside site
within the limit. Where the vendor is silent the reading under which more mail relays is taken
(spec §3.1): an unknown or ignored modifier is ``default``.

=========== ======= ===============================================================================
code        level   meaning
=========== ======= ===============================================================================
relay.E001  error   line is not a rule, comment or blank line (unrecognised pattern, TAB at start)
relay.E002  error   IPv4 octet above 255
relay.E003  error   IPv4 pattern with the wrong number of octets
relay.E004  error   octet with leading zeros (``010``): some programs read it as octal
relay.E005  error   CIDR prefix length missing, malformed or above 32
relay.E006  error   malformed IPv6 address or prefix
relay.E007  error   unknown ``#`` keyword (known: ``#<>``, ``#blank``, ``#number``, ``#nodomain``,
                    ``#host``)
relay.E008  error   sender address pattern with more than two ``*``
relay.E009  error   line longer than 255 bytes
relay.E010  error   non-ASCII characters in a rule line
relay.E011  error   trusted (bare, ``true`` or ``only``) rule for every client: open relay
relay.E012  error   trusted sender rule: anyone, from anywhere, can claim that sender
relay.E013  error   gateway mode without a catch-all norelay/false line deciding last
relay.E014  error   bytes neither ASCII nor CP932 (reported by ``decode_effect``)
relay.E015  error   trusted client rule reached by public addresses (not a declared outside site):
                    open relay for those addresses
relay.E016  error   ``default`` (or an ignored modifier) on a client rule reached by public
                    addresses while aliases exist: forged local senders relay from there
relay.E017  error   sender rule applying ``default`` that an alias-made local sender matches, and
                    that public clients reach: anyone claiming such a sender relays
relay.E018  error   declared outside site reached by more public addresses than the limit
relay.E019  error   gateway: the final catch-all is never reached by IPv4 (or IPv6) clients, and a
                    line above that takes them lets relaying through (not norelay/false)
relay.E020  error   no line matches some public addresses while aliases exist (no catch-all in
                    mail-server mode): the built-in table relays forged local senders
relay.E021  error   control character in a line (TAB and a line-ending CR excepted)
relay.E022  error   unknown modifier whose likely meaning (``flase``, ``norelay,3``) is stronger
                    than the ``default`` the daemon applies
relay.E023  error   two spaces or a TAB before a modifier stronger than the ``default`` the daemon
                    applies instead (``false``, ``norelay*``)
relay.E024  error   more lines than the supported maximum (:data:`MAX_LINES`)
relay.W001  warning unknown modifier: the line behaves like ``default`` (not weaker than meant)
relay.W002  warning two spaces or a TAB before the modifier: it is ignored, ``default`` applies
                    (not weaker than written)
relay.W003  warning trailing spaces or TABs
relay.W004  warning CIDR with host bits set (the network is used)
relay.W005  warning ``*`` glued to digits or followed by more octets: says what it really matches
relay.W006  warning rule below a catch-all: never reached
relay.W007  warning ``#<>`` / ``#blank`` below IP rules: shadowed for those clients
relay.W008  warning (retired: a trusted rule covering public addresses is now relay.E015, or
                    relay.W020 for a declared outside site)
relay.W009  warning trusted private range broader than a /16
relay.W010  warning duplicate of an earlier rule: never takes effect
relay.W011  warning shadowed by an earlier broader rule with a different effect
relay.W012  warning ``only`` used: the manuals disagree on it, use ``norelay``
relay.W013  warning ``norelay,1`` is documented as unused and acts like ``norelay``
relay.W014  warning norelay on a line that is not a catch-all: its flag can leak into other sessions
relay.W015  warning ``false`` catch-all: refuses all outside mail, inbound included
relay.W016  warning gateway: sender rule with ``default`` above the terminator (forged senders pass)
relay.W017  warning ``#<> default`` missing, altered or not at the top
relay.W018  warning ``#blank false`` missing, altered or not at the top
relay.W019  warning line read as CP932 (reported by ``decode_effect``)
relay.W020  warning declared outside site: names exactly the public addresses that may relay
relay.W021  warning client rule never reached (for every client, or for IPv4 or IPv6 clients): the
                    lines above it together match every address it matches
relay.I001  info    mail-server mode without a catch-all: fine, outside-to-outside relay is refused
relay.I002  info    non-ASCII characters in a comment
relay.I003  info    redundant: an earlier broader rule already gives the same effect
=========== ======= ===============================================================================

"Trusted" means the effective modifier lets matching sessions relay: bare, ``true`` and ``only``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from aliases.aliasfile import Alias
from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _
from relaypolicy.addrspace import analyse
from relaypolicy.effectfile import EffectFile
from relaypolicy.validation.lines import check_line
from relaypolicy.validation.order import check_header, check_order, check_terminator
from relaypolicy.validation.reach import Context, LocalSenders, check_reach
from relaypolicy.validation.rule import Rule

__all__ = ["MAX_LINES", "OUTSIDE_SITE_LIMIT", "validate_rules"]

#: The most lines an effect.dat may have here: far above any real gateway's few dozen, low
#: enough that every page and check over it stays fast (relay.E024).
MAX_LINES = 20_000
#: The default of 全設定's "outside site limit": public addresses one declared site may hold.
OUTSIDE_SITE_LIMIT = 256


def validate_rules(
    effect: EffectFile,
    *,
    gateway_mode: bool,
    aliases: Sequence[Alias] = (),
    outside_sites: Collection[int] = (),
    outside_site_limit: int = OUTSIDE_SITE_LIMIT,
) -> list[Finding]:
    """Every finding about ``effect``, ordered by line (file-wide findings last); never raises.

    ``aliases`` (in storage order) decide whether ``default`` lets forged senders relay;
    ``outside_sites`` are the line numbers of rows declared 社外拠点, each allowed at most
    ``outside_site_limit`` public addresses. Near-linear in lines + aliases.
    """
    rules = [Rule.of(line) for line in effect.rules]
    analysis = analyse(effect.rules)
    findings: list[Finding] = []
    if len(effect.lines) > MAX_LINES:
        findings.append(
            make(
                Level.ERROR,
                "relay.E024",
                _(
                    "effect.dat has %(count)s lines; at most %(limit)s are supported. A gateway "
                    "needs a few dozen: list networks (192.168.1.0/24) instead of single hosts."
                ),
                hint=_("Merge single addresses into networks and remove unused lines."),
                count=len(effect.lines),
                limit=MAX_LINES,
            )
        )
    for line in effect.lines:
        findings.extend(check_line(line))
    findings.extend(check_header(effect.rules))
    reported: set[int] = set()
    findings.extend(check_order(rules, reported))
    findings.extend(check_terminator(rules, gateway_mode=gateway_mode, aliases_exist=bool(aliases)))
    context = Context(
        gateway_mode=gateway_mode,
        locals=LocalSenders.build(aliases),
        sites=frozenset(outside_sites),
        limit=outside_site_limit,
        effective={rule.line.number: rule.effective for rule in rules},
    )
    findings.extend(check_reach(rules, analysis, context, reported))
    return sorted(findings, key=lambda f: (f.line is None, f.line or 0, f.code))
