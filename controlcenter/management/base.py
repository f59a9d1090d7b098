"""The base of every command in ``../shared/spec/cli.md``: one-line errors, exit status 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _


class ContractCommand(BaseCommand):
    def read_input(self, path: Path, *, limit: int | None = None) -> bytes:
        """The bytes of an input file, or the contract's one-line error (exit status 2).

        Reads at most ``limit`` bytes (``CC_UPLOAD_MAX_MB``, as the upload page accepts):
        a larger file, or an endless one such as ``/dev/zero``, is refused after that."""
        limit = settings.CC_UPLOAD_MAX_BYTES if limit is None else limit
        try:
            with path.open("rb") as stream:
                data = stream.read(limit + 1)
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}", returncode=2) from None
        if len(data) > limit:
            raise CommandError(
                _(
                    "%(path)s is larger than %(limit)s, the largest input accepted "
                    "(CC_UPLOAD_MAX_MB)"
                )
                % {"path": path, "limit": filesizeformat(limit)},
                returncode=2,
            )
        return data

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str) -> NoReturn:
            # argparse would print the whole usage; the contract wants one line.
            if parser.called_from_command_line:
                sys.stderr.write(f"{subcommand}: error: {message}\n")
                sys.exit(2)
            raise CommandError(f"Error: {message}", returncode=2)

        parser.error = error  # type: ignore[method-assign]
        return parser
