from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from controlcenter import services
from controlcenter.management.base import ContractCommand
from controlcenter.roles import Role
from controlcenter.services.users import administrator_restore, password_problems


class Command(ContractCommand):
    help = (
        "Make sure an active administrator exists: create one, or give the role back to an "
        "existing login of that name. The password comes from CC_ADMIN_PASSWORD (checked by "
        "the password rules) or is generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if services.administrators_exist():
            self.stdout.write("An administrator already exists; nothing to do.")
            return
        username: str = options["username"]
        given = os.environ.get("CC_ADMIN_PASSWORD")
        if given is not None and given != "":
            problems = password_problems(given, username=username)
            if problems:
                raise CommandError(
                    "CC_ADMIN_PASSWORD is refused: " + " ".join(problems), returncode=2
                )
        existing = get_user_model().objects.filter(username__iexact=username).first()
        generated = None
        if not given and (existing is None or not existing.has_usable_password()):
            generated = secrets.token_urlsafe(12)
        password = given or generated
        try:
            if existing is not None:
                user = administrator_restore(username=existing.get_username(), password=password)
                self.stdout.write(
                    f"No active administrator was left: {user.get_username()!r} is an "
                    "administrator again."
                )
            else:
                services.user_create(username=username, password=password, role=Role.ADMINISTRATOR)
                self.stdout.write(f"Created the administrator {username!r}.")
        except ValidationError as error:
            raise CommandError("; ".join(error.messages), returncode=2) from None
        if generated:
            self.stdout.write(
                f"Its password, shown only this once: {generated}\n"
                "Change it after logging in (管理ユーザー), or set CC_ADMIN_PASSWORD next time."
            )
