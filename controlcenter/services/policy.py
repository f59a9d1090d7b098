"""The stored policy as a whole: compiled for the simulator, self-tested, linted, summarised."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from aliases import aliasfile
from aliases.models import Alias, LocalDomain
from aliases.services import alias_check
from controlcenter.findings import Finding, sort_findings
from controlcenter.models import ServerSettings
from controlcenter.selftest import SelftestReport, run_selftest, selftest_findings
from controlcenter.services.settings import server_settings_findings
from controlcenter.simulation import Policy, compile_policy
from relaypolicy.effectfile import EffectFile, Modifier, PatternKind
from relaypolicy.services import relay_check, relay_table
from relaypolicy.table import render_table


def policy_compile() -> Policy:
    """The stored rules, aliases and domains compiled for the simulator, as exported."""
    server = ServerSettings.load()
    entries = [
        aliasfile.Alias(pattern, target, option)
        for pattern, target, option in Alias.objects.order_by("position").values_list(
            "pattern", "target", "option"
        )
    ]
    return compile_policy(
        effect=render_table(relay_table()).effect,
        aliases=entries,
        local_domains=LocalDomain.objects.values_list("name", flat=True),
        gateway_mode=server.is_gateway,
    )


def lan_probe_ip(effect: EffectFile) -> str | None:
    """A client address inside the first network the rules let relay (the self-test's LAN)."""
    for line in effect.rules:
        if line.effective not in (Modifier.DEFAULT, Modifier.TRUE):
            continue
        if line.pattern_kind in (PatternKind.CIDR, PatternKind.IPV4):
            network = ipaddress.ip_network(line.pattern, strict=False)
            if network.version == 4 and not network.is_global:
                hosts = network.num_addresses
                return str(network.network_address + (1 if hosts > 2 else 0))
        if line.pattern_kind is PatternKind.IPV4_WILDCARD:
            octets = [part for part in line.pattern.split("*", 1)[0].split(".") if part]
            if len(octets) in (1, 2, 3) and all(part.isdigit() for part in octets):
                candidate = ".".join([*octets, *["1"] * (4 - len(octets))])
                if not ipaddress.ip_address(candidate).is_global:
                    return candidate
    return None


def policy_selftest(policy: Policy | None = None) -> SelftestReport:
    """Run the open-relay self-test against the stored policy."""
    policy = policy_compile() if policy is None else policy
    return run_selftest(policy, lan_ip=lan_probe_ip(policy.effect))


def policy_lint(*, selftest: SelftestReport | None = None) -> list[Finding]:
    """Every validator over the stored rules, aliases and settings, and the self-test.

    This is what lint_policy prints and what blocks an export: a failing outside-relay probe
    is an error like any other.
    """
    server = ServerSettings.load()
    findings = [
        dataclasses.replace(finding, obj=finding.obj or "effect.dat")
        for finding in relay_check(server=server).findings
    ]
    findings += alias_check().findings
    findings += server_settings_findings(server)
    findings += selftest_findings(policy_selftest() if selftest is None else selftest)
    return sort_findings(findings)


def dashboard_status() -> dict[str, Any]:
    """What トップ shows: the open-relay verdict, counts, licence use, every finding and the
    unexported changes; computed once per state of the policy (controlcenter.policycache)."""
    from controlcenter.policycache import dashboard_overview

    return dashboard_overview()
