"""The simulator against an independent model of the spec (epost-relay.md §2, §3, §3.1).

The model below is written from the spec alone, as plainly as possible (string prefixes,
``ipaddress`` networks, ``fnmatch`` globs, the §3 table as an if-chain) and shares no code with
``controlcenter.simulation``. Random worlds (effect.dat lines, aliases, local domains) and
sessions are run through both; every verdict must agree. A disagreement is either a simulator bug
or a spec question, and either way a relay checker must not pass it by.
"""

from __future__ import annotations

import ipaddress
import random
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pytest

from aliases.aliasfile import Alias
from controlcenter.simulation import Session, compile_policy, evaluate_session
from relaypolicy.effectfile import parse_effect

# --- the model ---------------------------------------------------------------------------------

KEYWORDS = ("#<>", "#blank", "#nodomain", "#host", "#number")
RELAYING_AS_TRUE = {"", "true", "only"}  # `only`: the manuals disagree; §3.1 takes the worse case
NORELAY = {"norelay", "norelay,1", "norelay,2"}
KNOWN = {"true", "false", "default", "only", "norelay", "norelay,0", "norelay,1", "norelay,2"}


@dataclass(frozen=True)
class Rule:
    number: int
    pattern: str
    modifier: str  # lower-cased; an unrecognised one (typo, two spaces, TAB) reads as "default"


def model_rules(lines: list[str]) -> list[Rule]:
    rules = []
    for number, text in enumerate(lines, start=1):
        if not text or text[0] in "' ":
            continue
        pattern = re.split(r"[ \t]", text, maxsplit=1)[0]
        rest = text[len(pattern) :]
        if rest == "":
            modifier = ""
        elif rest.startswith(" ") and rest[1:].lower() in KNOWN:
            modifier = rest[1:].lower()
        else:
            modifier = "default"  # §2: an unrecognised modifier behaves like default
        rules.append(Rule(number, pattern, modifier))
    # §3.1: a tail of `<IP> false` lines below a final norelay catch-all sits above it.
    tail: list[Rule] = []
    while rules and _is_ip(rules[-1].pattern) and rules[-1].modifier == "false":
        tail.insert(0, rules.pop())
    if tail:
        if (
            rules
            and rules[-1].pattern in {"*", "*.*.*.*"}
            and rules[-1].modifier in NORELAY | {"norelay,0"}
        ):
            rules[-1:-1] = tail
        else:
            rules += tail
    return rules


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _client_pattern(pattern: str) -> bool:
    if pattern in {"*", "*.*.*.*"} or _is_ip(pattern):
        return True
    if "/" in pattern:
        try:
            ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
        return True
    return "*" in pattern and "@" not in pattern and re.fullmatch(r"[0-9.*]+", pattern) is not None


def _client_matches(pattern: str, client: str) -> bool:
    if pattern in {"*", "*.*.*.*"}:
        return True
    address = ipaddress.ip_address(client)
    if "/" in pattern:
        return address in ipaddress.ip_network(pattern, strict=False)
    if "*" in pattern:  # §2: the text before the first * is a plain string prefix
        return address.version == 4 and client.startswith(pattern.split("*", 1)[0])
    return address == ipaddress.ip_address(pattern)


@dataclass(frozen=True)
class Sender:
    kind: str  # "null", "empty", "nodomain", "address"
    local: str = ""
    domain: str = ""


def model_sender(text: str) -> Sender:
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        if text == "<>":
            return Sender("null")
        text = text[1:-1]
    if text == "":
        return Sender("empty")
    if "@" not in text:
        return Sender("nodomain", local=text)
    local, _, domain = text.rpartition("@")
    return Sender("address", local=local, domain=domain.lower().rstrip("."))


def _sender_matches(pattern: str, sender: Sender) -> bool:
    keyword = pattern.lower()
    if keyword == "#<>":
        return sender.kind == "null"
    if keyword == "#blank":
        return sender.kind == "empty"
    if keyword == "#nodomain":
        return sender.kind == "nodomain"
    if sender.kind != "address":
        return False
    if keyword == "#host":
        return "." not in sender.domain
    if keyword == "#number":
        return sender.domain.replace(".", "").isdigit()
    if "@" in pattern:
        return fnmatchcase(f"{sender.local}@{sender.domain}".lower(), pattern.lower())
    return fnmatchcase(sender.domain, pattern.lower())


def first_rule(rules: list[Rule], client: str, sender: Sender) -> Rule | None:
    for rule in rules:
        if _client_pattern(rule.pattern):
            if _client_matches(rule.pattern, client):
                return rule
        elif _sender_matches(rule.pattern, sender):
            return rule
    return None


def _alias_matches(pattern: str, local: str, domain: str) -> bool:
    alias_local, _, alias_domain = pattern.rpartition("@")
    if alias_domain.lower() != domain:
        return False
    # §3.1: the * of a wildcard matches zero or more characters.
    return fnmatchcase(local.lower(), alias_local.lower())


def classify(local: str, domain: str, aliases: list[str], domains: set[str]) -> str:
    if any(_alias_matches(pattern, local, domain) for pattern in aliases):
        return "local-existing"
    if domain in domains:
        return "local-unknown"
    return "external"


def model_session(
    lines: list[str],
    aliases: list[str],
    domains: set[str],
    client: str,
    mail_from: str,
    rcpts: list[str],
    auth: bool,
) -> tuple[str, list[str]]:
    """(MAIL verdict, one verdict per recipient) as the spec describes the daemon."""
    rules = model_rules(lines)
    sender = model_sender(mail_from)
    rule = first_rule(rules, client, sender)
    modifier = "default" if rule is None else rule.modifier
    if modifier == "false":
        return "reject", ["reject"] * len(rcpts)
    if sender.kind == "address":
        sender_class = classify(sender.local, sender.domain, aliases, domains)
    else:
        sender_class = "external"  # null, empty and no-domain senders (§3.1)
    authenticated = auth and modifier != "norelay,0"
    verdicts = []
    for rcpt in rcpts:
        parsed = model_sender(rcpt)
        if parsed.kind == "nodomain":
            rcpt_class = (
                "local-existing" if parsed.local.lower() == "postmaster" else "local-unknown"
            )
        else:
            rcpt_class = classify(parsed.local, parsed.domain, aliases, domains)
        outward = "relay" if rcpt_class == "external" else "deliver"
        if rcpt_class == "local-unknown":
            verdicts.append("reject")
        elif modifier in RELAYING_AS_TRUE or authenticated:
            verdicts.append(outward)
        elif sender_class == "local-unknown":
            verdicts.append("reject")
        elif rcpt_class == "local-existing":
            verdicts.append("deliver")
        elif modifier == "default" and sender_class == "local-existing":
            verdicts.append("relay")
        else:
            verdicts.append("reject")
    return "accept", verdicts


# --- random worlds -----------------------------------------------------------------------------

CLIENT_PATTERNS = [
    "192.168.1.0/24", "192.168.0.0/16", "10.0.0.0/8", "10.*.*.*", "192.168.*.*", "192.168.1*",
    "192.168.1.20", "172.16.0.0/12", "0.0.0.0/1", "0.0.0.0/0", "8.0.0.0/8", "1*", "203.0.113.0/24",
    "203.0.113.50", "100.64.0.0/10", "127.0.0.1", "*.*.*.*", "*", "::/0", "2001:db8::/32",
    "fe80::/10", "::1", "2400:cb00::/32", "128.0.0.0/1",
]  # fmt: skip
SENDER_PATTERNS = [
    "#<>", "#blank", "#nodomain", "#host", "example.co.jp", "*@example.co.jp",
    "taro@example.co.jp", "*.example.co.jp", "other.example",
]  # fmt: skip
MODIFIERS = [
    "", " true", " false", " default", " norelay", " norelay,0", " norelay,1", " norelay,2",
    " only", " flase", "  norelay", "\tnorelay", " NORELAY", " Default",
]  # fmt: skip
ALIASES = [
    "*@example.co.jp", "2009*@example.co.jp", "*-sales@example.co.jp", "taro@example.co.jp",
    "hanako@example.co.jp", "*@sub.example.co.jp",
]  # fmt: skip
CLIENTS = [
    "192.168.1.20", "192.168.10.5", "192.168.100.7", "10.1.2.3", "1.2.3.4", "19.0.0.1",
    "8.8.8.8", "100.64.0.1", "127.0.0.1", "203.0.113.50", "172.16.5.5", "127.255.255.255",
    "128.0.0.1", "2001:db8::1", "fe80::1", "::1", "2400:cb00::1",
]  # fmt: skip
SENDERS = [
    "<>", "", "taro@example.co.jp", "Taro@Example.CO.JP", "2009@example.co.jp",
    "2009abc@example.co.jp", "x-sales@example.co.jp", "nobody@example.co.jp",
    "someone@other.example", "spamtest", "user@localhost", "a@sub.example.co.jp",
]  # fmt: skip
RECIPIENTS = [
    "victim@example.net", "taro@example.co.jp", "nobody@example.co.jp", "postmaster",
    "2009@example.co.jp", "boss@sub.example.co.jp", "someone@other.example",
]  # fmt: skip


def random_world(rng: random.Random) -> tuple[list[str], list[str], set[str]]:
    lines = []
    if rng.random() < 0.8:
        lines += ["#<> default", "#blank false"]
    for _ in range(rng.randint(0, 6)):
        pattern = rng.choice(CLIENT_PATTERNS if rng.random() < 0.7 else SENDER_PATTERNS)
        lines.append(pattern + rng.choice(MODIFIERS))
    if rng.random() < 0.6:
        lines.append(rng.choice(["*.*.*.* norelay", "* norelay", "*.*.*.* norelay,2"]))
        if rng.random() < 0.2:
            lines.append("203.0.113.50 false")
    aliases = rng.sample(ALIASES, rng.randint(0, 4))
    domains = {"example.co.jp"} | ({"sub.example.co.jp"} if rng.random() < 0.5 else set())
    return lines, aliases, domains


def _world_ids() -> list[int]:
    return list(range(300))


@pytest.mark.parametrize("seed", _world_ids())
def test_simulator_agrees_with_the_model_of_the_spec(seed: int) -> None:
    rng = random.Random(seed)
    lines, alias_patterns, domains = random_world(rng)
    policy = compile_policy(
        effect=parse_effect("\n".join(lines) + "\n"),
        aliases=[Alias(pattern, pattern) for pattern in alias_patterns],
        local_domains=domains,
        gateway_mode=True,
    )
    disagreements = []
    for _ in range(40):
        client = rng.choice(CLIENTS)
        mail_from = rng.choice(SENDERS)
        rcpts = rng.sample(RECIPIENTS, rng.randint(1, 3))
        auth = rng.random() < 0.25
        expected = model_session(lines, alias_patterns, domains, client, mail_from, rcpts, auth)
        result = evaluate_session(policy, Session(client, mail_from, tuple(rcpts), auth))
        actual = (result.mail.verdict, [rcpt.verdict for rcpt in result.rcpt])
        if actual != expected:
            disagreements.append((client, mail_from, rcpts, auth, expected, actual))
    assert disagreements == [], f"effect.dat {lines!r}, aliases {alias_patterns!r}"
