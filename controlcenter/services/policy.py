"""The stored policy as a whole: compiled for the simulator, self-tested, linted, summarised."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from aliases.models import LocalDomain
from aliases.services import alias_check
from controlcenter.findings import Finding, sort_findings
from controlcenter.models import ServerSettings
from controlcenter.selftest import SelftestReport, run_selftest, selftest_findings
from controlcenter.services.settings import server_settings_findings
from controlcenter.simulation import Policy, compile_policy
from relaypolicy.addrspace import analyse, space_text
from relaypolicy.effectfile import EffectFile, Modifier, PatternKind
from relaypolicy.services import relay_check, relay_table, stored_aliases
from relaypolicy.table import outside_site_lines, render_table

#: Lint errors that mean an outside host can relay today; トップ turns red on them as on a
#: failing self-test probe (which finds the same holes by simulation).
OPEN_RELAY_CODES = frozenset(
    {
        "relay.E011",
        "relay.E012",
        "relay.E015",
        "relay.E016",
        "relay.E017",
        "relay.E018",
        "relay.E020",
    }
)


def policy_compile() -> Policy:
    """The stored rules, aliases and domains compiled for the simulator, as exported."""
    server = ServerSettings.load()
    table = relay_table()
    rendered = render_table(table)
    return compile_policy(
        effect=rendered.effect,
        aliases=stored_aliases(),
        local_domains=LocalDomain.objects.values_list("name", flat=True),
        gateway_mode=server.is_gateway,
        outside_sites=outside_site_lines(table, rendered),
        outside_site_limit=server.outside_site_limit,
    )


def outside_site_summary(policy: Policy) -> dict[str, Any]:
    """The public addresses declared outside sites let relay: what トップ lists."""
    reaches = analyse(policy.effect.rules).by_number()
    sites = []
    for number in sorted(policy.outside_sites):
        reach = reaches.get(number)
        line = policy.effect.lines[number - 1]
        relays = line.effective in (Modifier.TRUE, Modifier.ONLY, Modifier.DEFAULT)
        count = reach.public.size() if reach is not None else 0
        if reach is None or not relays or not count or count > policy.outside_site_limit:
            continue
        sites.append(
            {
                "line": number,
                "text": line.text,
                "count": reach.public.size(),
                "ranges": space_text(reach.public, limit=reach.public.size()),
            }
        )
    return {"sites": sites, "count": sum(site["count"] for site in sites)}


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

    overview = dashboard_overview()
    overview["relay_lines"] = relay_line_counts(rules=overview["rule_count"])
    return overview


@dataclasses.dataclass(frozen=True)
class RelayLineCounts:
    """The rule lines of effect.dat as マシンごとの中継 shows them: the fixed default lines on
    top, the rules in between, the final line."""

    header: int
    rules: int
    terminator: int

    @property
    def total(self) -> int:
        return self.header + self.rules + self.terminator


def relay_line_counts(*, rules: int) -> RelayLineCounts:
    from relaypolicy.models import RelayPolicy

    policy = RelayPolicy.load()
    return RelayLineCounts(len(policy.header), rules, 1 if policy.terminator else 0)
