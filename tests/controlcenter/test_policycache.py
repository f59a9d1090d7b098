"""controlcenter.policycache: results are reused per policy state, and every kind of change
(rule, terminator, alias, domain, setting) yields a new state, so a cached verdict never
outlives the policy it was computed from."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aliases import services as alias_services
from aliases.models import Alias, LocalDomain
from controlcenter import policycache, publishing
from controlcenter.models import ServerSettings
from controlcenter.services import policy_lint, policy_selftest, server_settings_update
from relaypolicy import services as relay_services
from relaypolicy.models import RelayPolicy, RelayRule
from relaypolicy.table import Row, RowKind, Table

pytestmark = pytest.mark.django_db

LAN = Row(RowKind.RULE, "192.168.1.0/24", "default")
OUTSIDE_TRUSTED = Row(RowKind.RULE, "203.0.113.0/24", "true")  # the self-test's outside client


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    cache.clear()
    policycache.clear_local()
    yield
    policycache.clear_local()


@pytest.fixture
def safe_gateway() -> None:
    """A hardened gateway: LAN relays, norelay last, one domain with a wildcard alias."""
    relay_services.relay_table_save(table=Table(rows=(LAN,)), version=0)
    alias_services.domain_create(name="example.co.jp")
    alias_services.alias_create(pattern="*@example.co.jp", target="*@inner.example.co.jp")


def _save_rules(*rows: Row, terminator: str = "norelay") -> None:
    version = RelayPolicy.load().version
    relay_services.relay_table_save(table=Table(rows=rows, terminator=terminator), version=version)


def _codes(verdict: policycache.PolicyVerdict) -> list[str]:
    return [f.code for f in verdict.findings]


def _assert_fresh(verdict: policycache.PolicyVerdict) -> None:
    """The cached verdict is what a fresh lint and self-test say now."""
    fresh = policy_selftest()
    assert _codes(verdict) == [f.code for f in policy_lint(selftest=fresh)]
    assert verdict.selftest_passed is fresh.passed
    assert verdict.probe_count == len(fresh.results)


def test_verdict_is_computed_once_per_state(safe_gateway: None) -> None:
    first = policycache.policy_verdict()
    policycache.clear_local()  # another worker: the shared cache answers
    with CaptureQueriesContext(connection) as queries:
        again = policycache.policy_verdict()
    assert again == first
    assert again is not first
    # policy_state's reads and one cache read: no alias row beyond the newest two.
    assert len(queries) <= 8
    alias_reads = [q["sql"] for q in queries if '"aliases_alias"' in q["sql"]]
    assert len(alias_reads) == 2
    assert all(sql.endswith("LIMIT 1") for sql in alias_reads)


def test_state_is_the_same_while_nothing_changes(safe_gateway: None) -> None:
    assert policycache.policy_state() == policycache.policy_state()


def test_rule_change_turns_the_cached_verdict_open(safe_gateway: None) -> None:
    before = policycache.policy_verdict()
    assert before.open_relay == []
    _save_rules(OUTSIDE_TRUSTED, LAN)
    after = policycache.policy_verdict()
    assert [f.code for f in after.open_relay][:1] == ["selftest.E001"]
    _assert_fresh(after)


def test_rule_changed_around_the_services_is_seen(safe_gateway: None) -> None:
    assert policycache.policy_verdict().open_relay == []
    RelayRule.objects.filter(pattern="192.168.1.0/24").update(pattern="203.0.113.0/24")
    after = policycache.policy_verdict()
    assert [f.code for f in after.open_relay][:1] == ["selftest.E001"]
    _assert_fresh(after)


def test_terminator_change_changes_the_cached_verdict(safe_gateway: None) -> None:
    before = policycache.policy_verdict()
    assert "selftest.W003" not in _codes(before)
    _save_rules(LAN, terminator="false")  # refuses every other host, inbound mail too
    after = policycache.policy_verdict()
    assert "selftest.W003" in _codes(after)
    _assert_fresh(after)


def test_terminator_changed_around_the_services_is_seen(safe_gateway: None) -> None:
    assert policycache.policy_verdict().open_relay == []
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    assert [f.code for f in policycache.policy_verdict().open_relay][:1] == ["selftest.E001"]


def test_alias_change_changes_the_cached_verdict() -> None:
    relay_services.relay_table_save(table=Table(rows=(LAN,)), version=0)
    alias_services.domain_create(name="example.co.jp")
    before = policycache.policy_verdict()
    alias_services.alias_create(pattern="*@example.co.jp", target="*@inner.example.co.jp")
    after = policycache.policy_verdict()
    assert after != before
    assert "alias.W001" in _codes(after)
    assert "alias.W001" not in _codes(before)
    assert after.probe_count > before.probe_count  # the wildcard's own sender probes
    _assert_fresh(after)
    alias = Alias.objects.get()
    alias_services.alias_update(
        alias=alias, pattern="*@example.co.jp", target="*@other.example.co.jp"
    )
    edited = policycache.policy_verdict()
    assert edited is not after
    _assert_fresh(edited)
    alias_services.aliases_delete(ids=[alias.pk])
    deleted = policycache.policy_verdict()
    assert "alias.W001" not in _codes(deleted)
    assert deleted.alias_count == 0
    _assert_fresh(deleted)


def test_domain_change_changes_the_cached_verdict(safe_gateway: None) -> None:
    before = policycache.policy_verdict()
    alias_services.domain_create(name="example.jp")
    after = policycache.policy_verdict()
    assert after.probe_count > before.probe_count
    _assert_fresh(after)
    alias_services.domain_delete(domain=LocalDomain.objects.get(name="example.jp"))
    assert policycache.policy_verdict().probe_count == before.probe_count


def test_setting_change_changes_the_cached_verdict(safe_gateway: None) -> None:
    RelayPolicy.objects.filter(pk=1).update(terminator="")
    gateway = policycache.policy_verdict()
    assert gateway.open_relay != []
    server_settings_update(changes={"mode": "mailserver"})
    mailserver = policycache.policy_verdict()
    assert _codes(mailserver) != _codes(gateway)
    _assert_fresh(mailserver)
    server_settings_update(changes={"mode": "gateway"})
    assert policycache.policy_verdict().open_relay != []


def test_alias_write_through_a_service_is_counted(safe_gateway: None) -> None:
    before = policycache.policy_state()
    alias_services.aliases_delete(ids=[Alias.objects.get().pk])
    assert ServerSettings.load().alias_revision == 3  # domain, alias, delete
    assert policycache.policy_state() != before


def test_setting_changed_around_the_services_is_seen(safe_gateway: None) -> None:
    before = policycache.policy_verdict()
    ServerSettings.objects.filter(pk=1).update(accounts=0)
    after = policycache.policy_verdict()
    assert "settings.W001" in _codes(after)
    assert "settings.W001" not in _codes(before)


def test_code_version_is_part_of_the_state(
    safe_gateway: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = policycache.policy_state()
    monkeypatch.setattr(policycache, "CODE_VERSION", "another build")
    assert policycache.policy_state() != before


def test_compiled_policy_follows_the_state(safe_gateway: None) -> None:
    first = policycache.compiled_policy()
    assert policycache.compiled_policy() is first
    _save_rules(OUTSIDE_TRUSTED, LAN)
    second = policycache.compiled_policy()
    assert second is not first
    assert "203.0.113.0/24" in [line.pattern for line in second.effect.rules]
    assert "203.0.113.0/24" not in [line.pattern for line in first.effect.rules]


def test_relay_report_follows_the_rules(safe_gateway: None) -> None:
    assert [r.pattern for r in policycache.relay_report().table.rows] == ["192.168.1.0/24"]
    _save_rules(OUTSIDE_TRUSTED, LAN)
    assert [r.pattern for r in policycache.relay_report().table.rows] == [
        "203.0.113.0/24",
        "192.168.1.0/24",
    ]


def test_folder_state_changes_when_a_deployed_file_is_written(tmp_path: Path) -> None:
    empty = policycache.folder_state(tmp_path)
    (tmp_path / publishing.EFFECT).write_text("*.*.*.* norelay\n")
    written = policycache.folder_state(tmp_path)
    assert written != empty
    (tmp_path / publishing.EFFECT).write_text("*.*.*.* true\n")  # same size
    assert policycache.folder_state(tmp_path) != written


def test_folder_state_is_none_for_an_unusable_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert policycache.folder_state(tmp_path / "file") is None


def test_plan_preview_is_recomputed_when_the_policy_changes(
    safe_gateway: None, tmp_path: Path
) -> None:
    calls: list[int] = []

    def plan() -> tuple[Path, publishing.ExportPlan, str]:
        calls.append(1)
        from controlcenter.services import export_plan

        return export_plan(dest=tmp_path)

    first = policycache.plan_preview(plan, folder=tmp_path, export_number=1)
    again = policycache.plan_preview(plan, folder=tmp_path, export_number=1)
    assert (len(calls), again[1].digest) == (1, first[1].digest)
    _save_rules(OUTSIDE_TRUSTED, LAN)
    changed = policycache.plan_preview(plan, folder=tmp_path, export_number=1)
    assert len(calls) == 2
    assert changed[1].digest != first[1].digest


def test_preview_keeps_the_first_lines_and_counts_the_rest() -> None:
    diff = publishing.FileDiff(
        "aliases.csv", ("--- a", "+++ b", "@@ -1 +1,500 @@", *[f"+{n}" for n in range(500)])
    )
    plan = publishing.ExportPlan(1, {}, {}, b"", (diff,), ())
    [shown] = policycache.preview_of(plan).diffs
    assert (len(shown.lines), shown.total, shown.added, shown.removed) == (400, 503, 500, 0)
    assert shown.truncated is True
    assert dataclasses.replace(shown, total=400).truncated is False


def test_a_worker_waits_for_the_one_computing_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cache.add("rcc:demo:s1:computing", 1, 60)  # another worker is computing it

    def sleep(seconds: float) -> None:  # ... and stores it while this one waits
        cache.set("rcc:demo:s1", "theirs", 60)

    monkeypatch.setattr("controlcenter.policycache.time.sleep", sleep)
    assert policycache._shared("rcc:demo:s1", lambda: "mine") == "theirs"


def test_a_worker_computes_itself_when_the_other_takes_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cache.add("rcc:demo:s2:computing", 1, 60)
    monkeypatch.setattr(policycache, "WAIT", 0.05)
    monkeypatch.setattr(policycache, "POLL", 0.01)
    assert policycache._shared("rcc:demo:s2", lambda: "mine") == "mine"
    assert cache.get("rcc:demo:s2") == "mine"
    assert cache.get("rcc:demo:s2:computing") is None


def test_a_failed_computation_releases_the_lock() -> None:
    def fail() -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        policycache._shared("rcc:demo:s3", fail)
    assert cache.get("rcc:demo:s3:computing") is None
    assert policycache._shared("rcc:demo:s3", lambda: "again") == "again"


def test_a_save_hands_its_report_to_the_next_page_view(
    safe_gateway: None, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = Table(rows=(LAN, Row(RowKind.RULE, "192.168.2.0/24", "norelay")))
    with django_capture_on_commit_callbacks(execute=True):
        saved = relay_services.relay_table_save(table=table, version=RelayPolicy.load().version)
    policycache.clear_local()  # another worker: from the shared cache, not computed again
    monkeypatch.setattr(policycache, "relay_check", _must_not_run)
    assert policycache.relay_report() == saved
    assert saved == relay_services.relay_check()


def test_a_report_is_not_kept_when_what_it_read_changed_meanwhile(
    safe_gateway: None, django_capture_on_commit_callbacks: Any
) -> None:
    inputs = policycache.relay_inputs()
    report = relay_services.relay_check()
    LocalDomain.objects.create(name="added-meanwhile.example")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        policycache.remember_relay_report(report, inputs)
    assert callbacks == []


def _must_not_run() -> None:
    raise AssertionError("the report was computed again")
