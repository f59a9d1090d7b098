from __future__ import annotations

import codecs
import gc
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext

from controlcenter.management.base import ContractCommand
from controlcenter.services import policy_compile
from controlcenter.simulation import Session, evaluate_session
from controlcenter.simulation.batch import (
    BatchError,
    Spool,
    client_ip_text,
    plain_json,
    run_batch,
    text_answer,
)


class Command(ContractCommand):
    help = (
        "Evaluate the stored policy for one SMTP session, or for every JSON line of --batch, "
        "exactly as the exported files would behave."
    )
    # A read-only question about the stored policy: the project's system checks (URLs,
    # templates, admin) say nothing about its answer and cost more than a batch of sessions.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client-ip", metavar="IP")
        parser.add_argument("--mail-from", metavar="ADDR", help="'<>' null sender, '' empty")
        parser.add_argument("--rcpt-to", metavar="ADDR", action="append", default=[])
        parser.add_argument("--auth", action="store_true", help="the session is SMTP-authenticated")
        parser.add_argument(
            "--batch", metavar="FILE.jsonl", help="one session per JSON line ('-': standard input)"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"]:
            if options["client_ip"] or options["mail_from"] is not None or options["rcpt_to"]:
                raise CommandError("--batch cannot be combined with a single session", returncode=2)
            self._batch(options["batch"], as_json=options["json"])
            return
        session = self._session(options)
        result = evaluate_session(policy_compile(), session)
        self.stdout.write(plain_json(result) if options["json"] else text_answer(result, gettext))

    def _session(self, options: dict[str, Any]) -> Session:
        missing = [
            name
            for name, value in (
                ("--client-ip", options["client_ip"]),
                ("--mail-from", options["mail_from"]),
                ("--rcpt-to", options["rcpt_to"] or None),
            )
            if value is None
        ]
        if missing:
            raise CommandError(f"missing {', '.join(missing)} (or use --batch FILE)", returncode=2)
        try:
            client_ip = client_ip_text(options["client_ip"])
        except ValueError as error:
            raise CommandError(f"--client-ip: {error}", returncode=2) from None
        return Session(
            client_ip=client_ip,
            mail_from=options["mail_from"],
            rcpt_to=tuple(options["rcpt_to"]),
            auth=options["auth"],
        )

    def _batch(self, name: str, *, as_json: bool) -> None:
        """Stream the sessions of ``name`` (``-``: standard input) through the policy,
        compiled once (:func:`controlcenter.simulation.batch.run_batch`).

        The output is held back (in memory up to a bound, then in a temporary file) and
        copied out only at the end: a bad line stops the run with the contract's one-line
        error and nothing on standard output.
        """
        label = name if name == "-" else str(Path(name))
        # The compiled policy (100,000 aliases: millions of objects) lives to the end and
        # neither compiling it nor the batch makes reference cycles worth collecting: keep the
        # collector from walking those objects again and again while they are built and while
        # the caches fill.
        gc.disable()
        try:
            policy = policy_compile()
            gc.freeze()
            with Spool() as out:
                try:
                    run_batch(policy, _lines(name), out, as_json=as_json, translate=gettext)
                except BatchError as error:
                    message = f"{label} line {error.number}: {error.detail}"
                    raise CommandError(message, returncode=2) from None
                self._copy_out(out)
        finally:
            gc.enable()
            gc.unfreeze()

    def _copy_out(self, spool: Spool) -> None:
        """The held-back UTF-8 output to standard output: as bytes when it has a binary
        buffer (no decoding and encoding again), else as text."""
        self.stdout.flush()
        target = getattr(self.stdout, "buffer", None)
        decoder = codecs.getincrementaldecoder("utf-8")()
        for block in spool.blocks():
            if target is not None:
                target.write(block)
            else:
                self.stdout.write(decoder.decode(block), ending="")
        if target is not None:
            target.flush()
        self.stdout.flush()


def _lines(name: str) -> Iterator[tuple[int, str]]:
    if name == "-":
        yield from enumerate(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8"), start=1)
        return
    path = Path(name)
    try:
        with path.open(encoding="utf-8") as handle:
            yield from enumerate(handle, start=1)
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {path}: {error}", returncode=2) from None
