"""Work done once per state of the policy, not per request.

Compiling 100,000 aliases, the self-test, the lint and the export preview take seconds; their
results depend only on the stored policy (rules, terminator and header, aliases, domains,
settings) and on this program's code. :func:`policy_state` digests both cheaply (a handful of
indexed queries, never a scan of the alias rows' content) and the results are kept under that
digest: in this process, and in Django's cache (``CACHES["default"]``: the database by default,
Redis or memcached through ``CC_CACHE_URL``) so that every gunicorn worker and command reuses
what one of them computed. A change to the policy changes the digest, so a stale verdict is
never served; old entries are simply never asked for again and age out.

What the digest reads, and why each part is enough:

- the server settings row, every field (``updated_at`` included);
- the relay policy row (header lines, terminator, pattern, ``version``, ``updated_at``) and every
  relay rule row (at most a few thousand short rows: digested in full, so even a row changed
  around the services is seen);
- the local domains, every row;
- the aliases by three index or one-row reads: ``ServerSettings.alias_revision`` (every alias
  and domain write service counts itself there, in its own transaction), the highest alias id
  (any insert, even around the services) and the latest ``updated_at`` (any update that sets
  it). An alias row deleted, or changed without setting ``updated_at``, by code that bypasses
  the services is not seen: nothing in this program does that;
- a digest of this program's source, so an upgrade never reuses results of the old code.

The export itself never uses these results: ``config_export`` checks the policy afresh.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from django.core.cache import cache
from django.db import transaction
from django.db.models import Max

from aliases.models import Alias, LocalDomain
from aliases.services import alias_check
from aliases.validation import LicenceUsage
from controlcenter import publishing
from controlcenter.findings import Finding
from controlcenter.models import ServerSettings
from controlcenter.selftest import (
    E001,
    ProbeResult,
    RangeCoverage,
    SelftestReport,
    selftest_findings,
)
from controlcenter.simulation import Policy
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.services import (
    EffectFileView,
    RelayReport,
    next_export_number,
    relay_check,
    relay_effect_file,
)

_T = TypeVar("_T")
_APPS = ("controlcenter", "relaypolicy", "aliases")
# A day: a state seen again after that (an undone change) is simply computed again.
TIMEOUT = 24 * 3600
# How long a worker waits for another one computing the same result, and how often it looks.
WAIT = 60
POLL = 0.1


def _code_version() -> str:
    """A digest of the program's Python source (migrations and tests aside)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for app in _APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = _code_version()


def policy_state() -> str:
    """The digest of everything the cached results depend on (see the module docstring)."""
    server = ServerSettings.load()
    relay = RelayPolicy.load()
    rules = list(
        RelayRule.objects.order_by("position", "pk").values_list(
            "pk",
            "position",
            "kind",
            "pattern",
            "modifier",
            "comment",
            "text",
            "outside_site",
            "outside_site_note",
        )
    )
    state = (
        CODE_VERSION,
        [(f.attname, getattr(server, f.attname)) for f in ServerSettings._meta.concrete_fields],
        [(f.attname, getattr(relay, f.attname)) for f in RelayPolicy._meta.concrete_fields],
        rules,
        *_alias_inputs(),
    )
    return hashlib.sha256(repr(state).encode()).hexdigest()


def _alias_inputs() -> tuple[object, ...]:
    # Separate reads, so that each uses its index (together they would scan the table).
    top = Alias.objects.order_by("-id").values_list("id", flat=True).first()
    at = Alias.objects.order_by("-updated_at").values_list("updated_at", flat=True).first()
    domains = list(LocalDomain.objects.order_by("pk").values_list("pk", "name", "comment"))
    return (top, at), domains


def relay_inputs() -> str:
    """A digest of what ``relay_check()`` depends on besides the relay table itself."""
    server = ServerSettings.load()
    settings = [
        (f.attname, getattr(server, f.attname)) for f in ServerSettings._meta.concrete_fields
    ]
    return hashlib.sha256(repr((CODE_VERSION, settings, *_alias_inputs())).encode()).hexdigest()


def remember_relay_report(report: RelayReport, inputs: str) -> None:
    """Inside the transaction that stores ``report.table``: keep ``report`` as the stored
    table's, so the first page after a save does not validate the table again. Only when
    nothing else it depends on (``relay_inputs()`` when it was computed) changed meanwhile;
    it is filed under the state being committed, and shared once that state is committed."""
    if relay_inputs() != inputs:
        return
    key = policy_state()

    def share() -> None:
        cache.set(f"rcc:relay:{key}", report, TIMEOUT)
        with _local_lock:
            _local["relay"] = (key, report)

    transaction.on_commit(share)


_local_lock = threading.Lock()
_local: dict[str, tuple[str, object]] = {}
_MISSING = object()


def _cached(kind: str, state: str, compute: Callable[[], _T], *, shared: bool = True) -> _T:
    """``compute()`` for ``state``: from this process, else from the shared cache, else fresh.

    This process keeps only the latest state per kind (a worker holds one policy's results).
    """
    hit = _local.get(kind)
    if hit is not None and hit[0] == state:
        return cast(_T, hit[1])
    key = f"rcc:{kind}:{state}"
    value: Any = _shared(key, compute) if shared else compute()
    with _local_lock:
        _local[kind] = (state, value)
    return cast(_T, value)


def _shared(key: str, compute: Callable[[], _T]) -> _T:
    """From the shared cache; else one worker computes it while the others wait for it (up to
    ``WAIT`` seconds, then they compute it too) instead of all computing it at once."""
    value: Any = cache.get(key, _MISSING)
    if value is not _MISSING:
        return cast(_T, value)
    lock = f"{key}:computing"
    if not cache.add(lock, os.getpid(), WAIT):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            time.sleep(POLL)
            value = cache.get(key, _MISSING)
            if value is not _MISSING:
                return cast(_T, value)
    try:
        value = compute()
        cache.set(key, value, TIMEOUT)
    finally:
        cache.delete(lock)
    return cast(_T, value)


def clear_local() -> None:
    """Forget this process's copies (tests; the shared cache is keyed by state anyway)."""
    with _local_lock:
        _local.clear()


# --- the results --------------------------------------------------------------------------------


def compiled_policy(state: str | None = None) -> Policy:
    """The compiled policy, kept per process: its pickle is larger and slower to load than
    compiling it again, and its per-address caches warm up with use."""
    from controlcenter.services.policy import policy_compile

    return _cached("compiled", state or policy_state(), policy_compile, shared=False)


def selftest_report(state: str | None = None) -> SelftestReport:
    """The open-relay self-test of the stored policy."""
    from controlcenter.services.policy import policy_selftest

    state = state or policy_state()
    # Kept per process only: see SelftestPage.
    return _cached("selftest", state, lambda: policy_selftest(compiled_policy(state)), shared=False)


def relay_report(state: str | None = None) -> RelayReport:
    """``relay_check()`` of the stored table: the rules rendered and validated."""
    return _cached("relay", state or policy_state(), relay_check)


def effect_file(state: str | None = None) -> EffectFileView:
    """effect.dat as the next export writes it (テキスト表示), with its check."""
    number = next_export_number()  # in the banner: a new export changes the file
    key = f"{state or policy_state()}:{number}"
    return _cached("effect", key, lambda: relay_effect_file(number))


@dataclass(frozen=True)
class PolicyVerdict:
    """What トップ, 設定の反映 and lint_policy say about the stored policy."""

    findings: list[Finding]  # every finding, lint order (policy_lint)
    open_relay: list[Finding]  # selftest.E001: an outside client relayed
    selftest_passed: bool
    probe_count: int
    rule_count: int
    alias_count: int
    licence: LicenceUsage
    fingerprints: dict[str, str] = field(default_factory=dict)
    address_probe_count: int = 0  # client addresses sampled from the rules' ranges
    outside_sites: dict[str, Any] = field(default_factory=dict)  # declared 社外拠点

    @property
    def error_count(self) -> int:
        return sum(1 for f in self.findings if f.is_error)


def policy_verdict(state: str | None = None) -> PolicyVerdict:
    """The lint and the self-test's verdict of the stored policy, with its counts."""
    from controlcenter.services.export import policy_fingerprints
    from controlcenter.services.policy import OPEN_RELAY_CODES, outside_site_summary, policy_lint

    state = state or policy_state()

    def compute() -> PolicyVerdict:
        selftest = selftest_report(state)
        checked = alias_check()
        findings = policy_lint(selftest=selftest)
        return PolicyVerdict(
            findings=findings,
            # The self-test's outside relays, and the lint's errors that mean one (a public
            # range on default, say): トップ turns red on either.
            open_relay=[f for f in selftest_findings(selftest) if f.code == E001]
            + [f for f in findings if f.is_error and f.code in OPEN_RELAY_CODES],
            selftest_passed=selftest.passed,
            probe_count=len(selftest.results),
            address_probe_count=len(selftest.addresses),
            outside_sites=outside_site_summary(compiled_policy(state)),
            rule_count=RelayRule.objects.filter(kind="rule").count(),
            alias_count=Alias.objects.count(),
            licence=checked.usage,
            fingerprints=policy_fingerprints(),
        )

    return _cached("verdict", state, compute)


# --- 設定の反映 ------------------------------------------------------------------------------

DIFF_LINES_SHOWN = 400


@dataclass(frozen=True)
class DiffPreview:
    """One file's diff as the page shows it: the first lines, and how many there are."""

    name: str
    lines: tuple[str, ...]
    total: int
    added: int
    removed: int
    created: bool = False

    @property
    def changed(self) -> bool:
        return self.total > 0

    @property
    def truncated(self) -> bool:
        return self.total > len(self.lines)

    def classified(self) -> list[tuple[str, str]]:
        return publishing.FileDiff(self.name, self.lines, self.created).classified()


@dataclass(frozen=True)
class PlanPreview:
    """What 設定の反映 shows of an :class:`~controlcenter.publishing.ExportPlan`."""

    export_number: int
    digest: str
    diffs: tuple[DiffPreview, ...]
    drift: tuple[publishing.Drift, ...]
    daemon_lines: tuple[publishing.DaemonLine, ...]
    overwrites: list[str]

    @property
    def changed(self) -> bool:
        return any(diff.changed for diff in self.diffs)


def diff_preview(diff: publishing.FileDiff) -> DiffPreview:
    added = sum(1 for line in diff.lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff.lines if line.startswith("-") and not line.startswith("---"))
    return DiffPreview(
        diff.name, diff.lines[:DIFF_LINES_SHOWN], len(diff.lines), added, removed, diff.created
    )


def preview_of(plan: publishing.ExportPlan) -> PlanPreview:
    return PlanPreview(
        plan.export_number,
        plan.digest,
        tuple(diff_preview(diff) for diff in plan.diffs),
        plan.drift,
        plan.daemon_lines,
        plan.overwrites,
    )


def folder_state(folder: Path) -> str | None:
    """The deployed files' identity by ``stat`` (inode, size, mtime, ctime: any write changes
    the ctime); None when the folder cannot be examined (the plan reports why)."""
    parts: list[tuple[str, tuple[int, ...] | None]] = []
    for name in (*publishing.FILE_NAMES, publishing.MANIFEST):
        try:
            st = os.stat(folder / name)
        except FileNotFoundError:
            parts.append((name, None))
            continue
        except OSError:
            return None
        parts.append((name, (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)))
    return hashlib.sha256(repr((str(folder), parts)).encode()).hexdigest()


def plan_preview(
    compute: Callable[[], tuple[Path, publishing.ExportPlan, str]],
    *,
    folder: Path,
    export_number: int,
    state: str | None = None,
) -> tuple[Path, PlanPreview, str]:
    """``compute()``'s plan (``services.export_plan``) as shown, kept per policy state, export
    number and deployed files; an unusable folder is never cached."""
    deployed = folder_state(folder)
    if deployed is None:
        dest, plan, error = compute()
        return dest, preview_of(plan), error

    def fresh() -> tuple[Path, PlanPreview, str]:
        dest, plan, error = compute()
        return dest, preview_of(plan), error

    key = f"{state or policy_state()}:{export_number}:{deployed}"
    dest, preview, error = _cached("plan", key, fresh)
    if error:  # the folder became unusable in a way stat did not show: do not keep it
        with _local_lock:
            _local.pop("plan", None)
        cache.delete(f"rcc:plan:{key}")
    return dest, preview, error


def export_diffs(
    export_pk: int, folder: Path, compute: Callable[[], list[publishing.FileDiff]]
) -> tuple[DiffPreview, ...]:
    """How today's policy differs from export ``export_pk`` (履歴's detail page), as shown:
    kept per policy state and deployed files (the next export carries the daemon's lines
    over from them)."""

    def fresh() -> tuple[DiffPreview, ...]:
        return tuple(diff_preview(diff) for diff in compute())

    deployed = folder_state(folder)
    if deployed is None:
        return fresh()
    return _cached("export-diff", f"{policy_state()}:{deployed}:{export_pk}", fresh)


@dataclass(frozen=True)
class PublishOverview:
    """What 設定の反映 shows about the next export."""

    last_export: Any  # controlcenter.models.Export | None
    pending: list[str]  # parts of the policy changed since the last export
    dest: Path
    plan: PlanPreview
    verdict: PolicyVerdict
    folder_error: str = ""
    state: str = ""  # the key of the page's cached fragments

    @property
    def findings(self) -> list[Finding]:
        return self.verdict.findings

    @property
    def has_errors(self) -> bool:
        return self.verdict.error_count > 0

    @property
    def can_publish(self) -> bool:
        return not self.has_errors and not self.folder_error


def publish_overview() -> PublishOverview:
    """設定の反映's page: pending parts, the verdict and the plan, each computed once per state."""
    from controlcenter.models import Export
    from controlcenter.services import export as exports

    state = policy_state()
    verdict = policy_verdict(state)
    last = exports.last_export()
    if last is None:
        pending = list(exports.SNAPSHOT_PARTS)
    elif last.fingerprints:
        now = verdict.fingerprints
        pending = [p for p in exports.SNAPSHOT_PARTS if last.fingerprints.get(p) != now[p]]
    else:
        pending = exports.pending_changes()[1]
    number = int(Export.objects.aggregate(last=Max("number"))["last"] or 0) + 1
    dest, plan, error = plan_preview(
        exports.export_plan,
        folder=ServerSettings.load().export_path,
        export_number=number,
        state=state,
    )
    return PublishOverview(last, pending, dest, plan, verdict, error, state)


def dashboard_overview() -> dict[str, Any]:
    """トップ's context: the verdict, the server settings and the unexported changes."""
    from controlcenter.services import export as exports

    state = policy_state()
    verdict = policy_verdict(state)
    last = exports.last_export()
    if last is not None and last.fingerprints:
        now = verdict.fingerprints
        pending = [p for p in exports.SNAPSHOT_PARTS if last.fingerprints.get(p) != now[p]]
    else:
        last, pending = exports.pending_changes()
    return {
        "policy_state": state,  # the key of the page's cached fragments
        "server": ServerSettings.load(),
        "verdict": verdict,
        "open_relay": verdict.open_relay,
        "outside_sites": verdict.outside_sites,
        "findings": verdict.findings,
        "error_count": verdict.error_count,
        "rule_count": verdict.rule_count,
        "alias_count": verdict.alias_count,
        "licence": verdict.licence,
        "last_export": last,
        "pending": pending,
    }


# --- セルフテスト ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeLine:
    """A passing probe as the page lists it."""

    client_ip: str
    mail_from: str
    expectation: str  # an English template, translated by the page


@dataclass(frozen=True)
class OutcomeGroup:
    """Passing probes whose recipients got the same verdicts and that have the same findings
    (warnings, information), shown once for all of them."""

    probes: tuple[ProbeLine, ...]
    by_verdict: tuple[tuple[str, tuple[str, ...]], ...]  # (verdict, addresses), first seen first
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class SelftestPage:
    """セルフテスト's page: every failure in full, the passing probes grouped by outcome.

    Plain strings and findings only (the full report's pickle is 1.5 MB of small objects at
    100,000 aliases and takes longer to load than running the self-test).
    """

    outside_ip: str
    lan_ip: str | None
    probe_count: int
    findings: list[Finding]
    failures: tuple[ProbeResult, ...]
    outside_relay_failures: tuple[ProbeResult, ...]
    groups: tuple[OutcomeGroup, ...]
    recipient_count: int
    check_count: int
    warned: int  # probes that passed with a finding
    addresses: int = 0  # client addresses sampled from the rules' ranges (selftest docstring)
    public_addresses: int = 0
    coverage: tuple[RangeCoverage, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


def selftest_page(state: str | None = None) -> SelftestPage:
    """The self-test of the stored policy, arranged for the page once per state."""
    state = state or policy_state()
    return _cached("selftest-page", state, lambda: arrange_selftest(selftest_report(state)))


def arrange_selftest(report: SelftestReport) -> SelftestPage:
    """``report`` as the page shows it: nothing of it is lost, repeated outcomes are merged."""
    groups: dict[tuple[tuple[tuple[str, str], ...], tuple[Finding, ...]], list[ProbeLine]] = {}
    for result in report.results:
        if result.passed:
            outcome = tuple((r.address, str(r.verdict)) for r in result.result.rcpt)
            session = result.probe.session
            line = ProbeLine(session.client_ip, session.mail_from, result.probe.expectation)
            groups.setdefault((outcome, result.findings), []).append(line)
    arranged = []
    for (outcome, findings), members in groups.items():
        by_verdict: dict[str, list[str]] = {}
        for address, verdict in outcome:
            by_verdict.setdefault(verdict, []).append(address)
        verdicts = tuple((v, tuple(a)) for v, a in by_verdict.items())
        arranged.append(OutcomeGroup(tuple(members), verdicts, findings))
    rcpts = [r.address for result in report.results for r in result.result.rcpt]
    return SelftestPage(
        outside_ip=report.outside_ip,
        lan_ip=report.lan_ip,
        probe_count=len(report.results),
        findings=selftest_findings(report),
        failures=report.failures,
        outside_relay_failures=report.outside_relay_failures,
        groups=tuple(arranged),
        recipient_count=len(set(rcpts)),
        check_count=len(rcpts),
        warned=sum(1 for r in report.results if r.passed and r.findings),
        addresses=len(report.addresses),
        public_addresses=report.public_probe_count,
        coverage=report.coverage,
    )
