"""One vocabulary for everything a validator can say about the policy.

Validators are pure functions that return ``list[Finding]`` and never raise.
A finding's ``code`` is stable and never reused (``relay.E001``, ``alias.W002``),
like Django's system-check ids: tests, the lint command and the UI key on it,
never on the wording of ``message``.

- ``ERROR`` blocks: a form refuses to save, an export refuses to write.
- ``WARNING`` explains a risk but never blocks.
- ``INFO`` is context worth showing (for example, what a pattern really matches).

``line`` is the 1-based line number in the file the finding is about
(effect.dat for relay rules, the CSV for an import) or ``None``.
``obj`` names the object concerned for findings that are not about a line
(for example ``"alias:*@example.co.jp"`` or ``"settings"``).

Messages are English ``%``-templates marked with ``gettext_noop`` (so
``makemessages`` extracts them) plus ``params``; this module stays free of
Django, and the web layer translates with ``finding.render(gettext)``.
Build findings with :func:`make`::

    make(Level.ERROR, "relay.E010", _("%(pattern)s is trusted: every host may relay"),
         line=5, pattern="*.*.*.*")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    INFO = 10
    WARNING = 30
    ERROR = 40

    @property
    def label(self) -> str:
        return self.name.lower()


def gettext_noop(message: str) -> str:
    """Mark a string for translation without translating it (like Django's)."""
    return message


Translate = Callable[[str], str]


def _identity(message: str) -> str:
    return message


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    code: str
    message: str
    line: int | None = None
    hint: str = ""
    obj: str = ""
    params: tuple[tuple[str, object], ...] = ()

    def render(self, translate: Translate = _identity) -> str:
        """The message, translated by ``translate`` and filled with ``params``."""
        return _fill(translate(self.message), self.params)

    def render_hint(self, translate: Translate = _identity) -> str:
        return _fill(translate(self.hint), self.params) if self.hint else ""

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR

    def as_dict(self, translate: Translate = _identity) -> dict[str, object]:
        """The JSON shape of the lint contract (``../shared/spec/cli.md``)."""
        return {
            "level": self.level.label,
            "code": self.code,
            "message": self.render(translate),
            "line": self.line,
            "object": self.obj,
            "hint": self.render_hint(translate),
        }


def make(
    level: Level,
    code: str,
    message: str,
    *,
    line: int | None = None,
    hint: str = "",
    obj: str = "",
    **params: object,
) -> Finding:
    """Build a finding; keyword arguments beyond the fields fill the templates."""
    return Finding(level, code, message, line, hint, obj, tuple(sorted(params.items())))


def _fill(template: str, params: tuple[tuple[str, object], ...]) -> str:
    return template % dict(params) if params else template


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.level is Level.ERROR for f in findings)


#: Error codes that mean the policy lets outside hosts relay or overruns the licence, as opposed
#: to a malformed line. An import takes a file whose only errors are these (it is what the
#: server runs today, and the tool must show it red); an edit may never add one, and an export
#: refuses them like every error. Codes join this set, never leave it.
POLICY_RISK_CODES: frozenset[str] = frozenset(
    {
        "relay.E011",  # a trusted catch-all: every host may relay
        "relay.E012",  # a trusted sender: anyone who claims it may relay
        "relay.E013",  # no final norelay line in gateway mode (or one that allows relaying)
        "alias.E006",  # a full wildcard alias without the final norelay line
        "alias.E007",  # licence exceeded
        "selftest.E001",  # a self-test probe from outside relays
    }
)


def is_policy_risk(finding: Finding) -> bool:
    """An error about what the policy allows (open relay, licence), not about malformed input."""
    return finding.level is Level.ERROR and finding.code in POLICY_RISK_CODES


def blocking_errors(findings: Iterable[Finding]) -> list[Finding]:
    """The errors that refuse an import: every error that is not a policy risk."""
    return [f for f in findings if f.level is Level.ERROR and f.code not in POLICY_RISK_CODES]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then by line (findings without a line last), then by code."""
    return sorted(
        findings,
        key=lambda f: (-f.level, f.line is None, f.line or 0, f.code),
    )
