"""The base of every command in ``../shared/spec/cli.md``: one-line errors, exit status 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser


class ContractCommand(BaseCommand):
    def read_input(self, path: Path) -> bytes:
        """The bytes of an input file, or the contract's one-line error (exit status 2)."""
        try:
            return path.read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}", returncode=2) from None

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
