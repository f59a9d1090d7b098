"""Validate a whole alias table against the relay policy and the licence (no Django).

Findings about one alias carry ``obj="alias:<pattern>"`` and ``line=None`` (storage positions
are not file lines). Because two aliases can share a pattern (that is ``alias.E004``),
:func:`validate_alias_rows` also returns them keyed by 0-based storage position, so a screen can
show each finding on its own row; :func:`validate_aliases` is the flat list for the lint.
Messages say "row N" with N = position + 1, as the list screen numbers its rows.

==========  =======  ==================================================================
code        level    meaning
==========  =======  ==================================================================
alias.E001  error    the alias pattern is malformed (message says how)
alias.E002  error    the target (実アドレス) or its option is malformed
alias.E003  error    the alias domain is not one of the managed local domains
alias.E004  error    duplicate alias (case-insensitive); names the first row
alias.E005  error    the target has a ``*`` but the alias has none to carry over
alias.E006  error    ``*@domain`` in gateway mode without the final norelay line: open relay
alias.E007  error    licence exceeded: accounts + aliases + mailing lists > licence
alias.W001  warning  ``*@domain`` behind the norelay line: forged senders accepted inbound,
                     backscatter; register one alias per address (spec §1, measure 2)
alias.W002  warning  alias shadowed by an earlier wildcard of the same domain (named)
alias.W003  warning  partial wildcard in gateway mode without the norelay line: every
                     matching forged sender may relay from any host
alias.W004  warning  licence more than 90 % used
alias.W005  warning  gateway mode with no mailbox account on a sized licence
alias.W006  warning  ``*@domain`` outside gateway mode without the norelay line
alias.I001  info     partial wildcard: a middle ground between ``*@`` and one alias per address
alias.I002  info     wildcard target carries the matched local part, routing characters
                     (``user%host``, ``host!user``) included, to the inner server
==========  =======  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aliases.aliasfile import (
    WILDCARD,
    Alias,
    AliasIndex,
    AliasKind,
    AliasSyntaxError,
    parse_alias_pattern,
    parse_target,
)
from controlcenter.findings import Finding, Level, make
from controlcenter.findings import gettext_noop as _

NEAR_LIMIT_PERCENT = 90

_ONE_PER_ADDRESS = _(
    "Register one alias per real address (user@domain -> user@domain), the vendor's "
    "second counter-measure; partial wildcards such as 2009*@domain are a middle ground."
)
_ADD_NORELAY = _(
    "Add the final *.*.*.* norelay line to effect.dat (the vendor's first counter-measure)."
)


@dataclass(frozen=True, slots=True)
class LicenceUsage:
    """Seats used against the licence size; ``limit`` and ``ratio`` are ``None`` when the
    licence is unlimited."""

    used: int
    limit: int | None
    ratio: float | None
    exceeded: bool

    @property
    def percent(self) -> int | None:
        return None if self.ratio is None else int(self.ratio * 100)

    @property
    def near_limit(self) -> bool:
        """More than 90 % used but not exceeded."""
        return (
            self.limit is not None
            and not self.exceeded
            and self.used * 100 > self.limit * NEAR_LIMIT_PERCENT
        )


def licence_usage(
    aliases_count: int, accounts: int, mailing_lists: int, licence: int | None
) -> LicenceUsage:
    """Accounts, aliases and mailing lists all take a seat (vendor documentation)."""
    used = aliases_count + accounts + mailing_lists
    if licence is None:
        return LicenceUsage(used, None, None, exceeded=False)
    ratio = used / licence if licence > 0 else (0.0 if used == 0 else float("inf"))
    return LicenceUsage(used, licence, ratio, exceeded=used > licence)


@dataclass(frozen=True, slots=True)
class AliasValidation:
    """Findings per alias (keyed by 0-based storage position) and about the whole table."""

    by_position: Mapping[int, tuple[Finding, ...]]
    general: tuple[Finding, ...]
    usage: LicenceUsage

    @property
    def findings(self) -> list[Finding]:
        """Every finding: the rows' in storage order, then the table-wide ones."""
        rows = [f for position in sorted(self.by_position) for f in self.by_position[position]]
        return rows + list(self.general)

    @property
    def has_errors(self) -> bool:
        return any(f.is_error for f in self.findings)


def validate_aliases(
    aliases: Sequence[Alias],
    *,
    local_domains: frozenset[str],
    gateway_mode: bool,
    relay_terminated: bool,
    licence: int | None,
    accounts: int,
    mailing_lists: int = 0,
) -> list[Finding]:
    """Every finding about the alias table, as a flat list (see the module's code table)."""
    return validate_alias_rows(
        aliases,
        local_domains=local_domains,
        gateway_mode=gateway_mode,
        relay_terminated=relay_terminated,
        licence=licence,
        accounts=accounts,
        mailing_lists=mailing_lists,
    ).findings


def validate_alias_rows(
    aliases: Sequence[Alias],
    *,
    local_domains: frozenset[str],
    gateway_mode: bool,
    relay_terminated: bool,
    licence: int | None,
    accounts: int,
    mailing_lists: int = 0,
) -> AliasValidation:
    """Like :func:`validate_aliases`, with the findings grouped by storage position.

    ``relay_terminated`` means effect.dat ends with a catch-all ``norelay``/``false`` line;
    ``licence`` ``None`` is the unlimited edition.
    """
    domains = frozenset(d.lower() for d in local_domains)
    index = AliasIndex.build(aliases)
    first_by_key: dict[str, int] = {}
    by_position: dict[int, tuple[Finding, ...]] = {}
    for position, alias in enumerate(aliases):
        found = _check_alias(
            alias,
            position,
            aliases,
            index,
            first_by_key,
            domains=domains,
            gateway_mode=gateway_mode,
            relay_terminated=relay_terminated,
        )
        if found:
            by_position[position] = tuple(found)
    usage, general = validate_table(
        len(aliases),
        gateway_mode=gateway_mode,
        licence=licence,
        accounts=accounts,
        mailing_lists=mailing_lists,
    )
    return AliasValidation(by_position, general, usage)


def validate_table(
    aliases_count: int,
    *,
    gateway_mode: bool,
    licence: int | None,
    accounts: int,
    mailing_lists: int = 0,
) -> tuple[LicenceUsage, tuple[Finding, ...]]:
    """The licence usage and the findings about the whole table (not about one alias), as
    :func:`validate_alias_rows` reports them in ``general``."""
    usage = licence_usage(aliases_count, accounts, mailing_lists, licence)
    general = check_licence(usage, aliases_count, accounts, mailing_lists)
    if gateway_mode and accounts == 0 and licence is not None:
        general.append(
            make(
                Level.WARNING,
                "alias.W005",
                _(
                    "no mailbox account: a gateway needs at least one (dummy) account, "
                    "otherwise the product demands an unlimited licence"
                ),
                obj="settings",
                hint=_("Create one dummy account in a domain of its own."),
            )
        )
    return usage, tuple(general)


def _check_alias(
    alias: Alias,
    position: int,
    aliases: Sequence[Alias],
    index: AliasIndex,
    first_by_key: dict[str, int],
    *,
    domains: frozenset[str],
    gateway_mode: bool,
    relay_terminated: bool,
) -> list[Finding]:
    found: list[Finding] = []
    pattern_ok = _syntax(found, alias, "alias.E001", parse_alias_pattern, alias.pattern)
    target_ok = _syntax(found, alias, "alias.E002", parse_target, alias.target_text)
    if not pattern_ok:
        return found
    if alias.domain not in domains:
        found.append(
            _about(
                alias,
                Level.ERROR,
                "alias.E003",
                _("%(pattern)s is in %(domain)s, which is not a local domain managed here"),
                hint=_("Add the domain to the local domains first, or correct the alias."),
            )
        )
    first = first_by_key.setdefault(alias.key, position)
    if first != position:
        found.append(
            _about(
                alias,
                Level.ERROR,
                "alias.E004",
                _("%(pattern)s duplicates %(first)s on row %(first_row)s: only the first is used"),
                first=aliases[first].pattern,
                first_row=first + 1,
            )
        )
    kind = alias.kind
    target_wild = target_ok and WILDCARD in alias.target
    if target_wild and kind is AliasKind.EXACT:
        found.append(
            _about(
                alias,
                Level.ERROR,
                "alias.E005",
                _("the target %(target)s has a * but %(pattern)s has none to carry over"),
                target=alias.target,
            )
        )
    if kind is not AliasKind.EXACT:
        found.append(_wildcard_risk(alias, kind, gateway_mode, relay_terminated))
    shadow = index.shadowing_of(alias, position) if first == position else None
    if shadow is not None:
        found.append(shadowed_finding(alias, aliases[shadow], shadow))
    if target_wild and kind is not AliasKind.EXACT:
        found.append(
            _about(
                alias,
                Level.INFO,
                "alias.I002",
                _(
                    "%(pattern)s passes any matching local part on to %(target)s, routing "
                    "characters included (user%%host, host!user): the inner server decides "
                    "what happens next"
                ),
                hint=_("Make sure the inner server does not honour %% or ! routing."),
                target=alias.target,
            )
        )
    return found


def shadowed_finding(alias: Alias, earlier: Alias, earlier_position: int) -> Finding:
    """``alias.W002`` for ``alias``, never used because of the wildcard ``earlier`` stored
    at 0-based ``earlier_position``."""
    return _about(
        alias,
        Level.WARNING,
        "alias.W002",
        _(
            "%(pattern)s is never used: the earlier wildcard %(earlier)s on row "
            "%(earlier_row)s already matches every address it would"
        ),
        hint=_("Move it above the wildcard or delete it; the first match wins."),
        earlier=earlier.pattern,
        earlier_row=earlier_position + 1,
    )


def _wildcard_risk(
    alias: Alias, kind: AliasKind, gateway_mode: bool, relay_terminated: bool
) -> Finding:
    if kind is AliasKind.FULL_WILDCARD:
        if gateway_mode and not relay_terminated:
            return _about(
                alias,
                Level.ERROR,
                "alias.E006",
                _(
                    "wildcard %(pattern)s relays everything: any sender in %(domain)s "
                    "can relay from any host"
                ),
                hint=_ADD_NORELAY,
            )
        if relay_terminated:
            return _about(
                alias,
                Level.WARNING,
                "alias.W001",
                _(
                    "wildcard %(pattern)s accepts every address in %(domain)s: forged "
                    "senders are accepted inbound and their bounces hit innocent people "
                    "(backscatter)"
                ),
                hint=_ONE_PER_ADDRESS,
            )
        return _about(
            alias,
            Level.WARNING,
            "alias.W006",
            _(
                "wildcard %(pattern)s makes any sender in %(domain)s a local user: if this "
                "server also works as a gateway, any host can relay with such a sender"
            ),
            hint=_ADD_NORELAY,
        )
    if gateway_mode and not relay_terminated:
        return _about(
            alias,
            Level.WARNING,
            "alias.W003",
            _(
                "partial wildcard %(pattern)s: any sender whose address matches it "
                "can relay from any host"
            ),
            hint=_ADD_NORELAY,
        )
    return _about(
        alias,
        Level.INFO,
        "alias.I001",
        _(
            "partial wildcard %(pattern)s is a middle ground: it takes one licence "
            "seat but accepts every matching address, real or not"
        ),
        hint=_ONE_PER_ADDRESS,
    )


def _about(
    alias: Alias, level: Level, code: str, message: str, *, hint: str = "", **extra: object
) -> Finding:
    params = {"pattern": alias.pattern, "domain": alias.domain} | extra
    obj = f"alias:{alias.pattern}"
    return Finding(level, code, message, None, hint, obj, tuple(sorted(params.items())))


def _syntax(
    found: list[Finding], alias: Alias, code: str, parse: Callable[[str], object], text: str
) -> bool:
    try:
        parse(text)
    except AliasSyntaxError as error:
        params = tuple(sorted(error.params.items()))
        obj = f"alias:{alias.pattern}"
        found.append(Finding(Level.ERROR, code, error.message, obj=obj, params=params))
        return False
    return True


def check_licence(
    usage: LicenceUsage, aliases: int, accounts: int, mailing_lists: int
) -> list[Finding]:
    """The licence finding for ``usage``: ``alias.E007`` when exceeded, ``alias.W004`` above
    90 %, otherwise none; the counts only word the message."""
    if usage.exceeded:
        return [
            make(
                Level.ERROR,
                "alias.E007",
                _(
                    "licence exceeded: %(used)s of %(limit)s seats used (%(accounts)s accounts "
                    "+ %(aliases)s aliases + %(mailing_lists)s mailing lists); entries beyond "
                    "the licence answer 'user unknown'"
                ),
                obj="licence",
                hint=_("Buy a larger licence or remove aliases."),
                used=usage.used,
                limit=usage.limit,
                aliases=aliases,
                accounts=accounts,
                mailing_lists=mailing_lists,
            )
        ]
    if usage.near_limit:
        return [
            make(
                Level.WARNING,
                "alias.W004",
                _("licence nearly full: %(used)s of %(limit)s seats used (%(percent)s%%)"),
                obj="licence",
                used=usage.used,
                limit=usage.limit,
                percent=usage.percent,
            )
        ]
    return []
