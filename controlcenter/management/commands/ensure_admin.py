from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from controlcenter import services
from controlcenter.management.base import ContractCommand
from controlcenter.roles import Role


class Command(ContractCommand):
    help = (
        "Create the first administrator when there is none. The password comes from "
        "CC_ADMIN_PASSWORD or is generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if services.administrators_exist():
            self.stdout.write("An administrator already exists; nothing to do.")
            return
        given = os.environ.get("CC_ADMIN_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        try:
            services.user_create(
                username=options["username"],
                password=password,
                role=Role.ADMINISTRATOR,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages), returncode=2) from None
        self.stdout.write(f"Created the administrator {options['username']!r}.")
        if not given:
            self.stdout.write(
                f"Its password, shown only this once: {password}\n"
                "Change it after logging in (管理ユーザー), or set CC_ADMIN_PASSWORD next time."
            )
