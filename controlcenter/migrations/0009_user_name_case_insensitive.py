"""User names are unique regardless of case (``Admin`` and ``admin`` are one name).

Existing names that differ only in case keep the oldest login's spelling; each later one is
renamed ``<name>-<id>`` (written to the audit log) before the unique index on lower(username)
is created, so the migration never fails on old data.
"""

from django.db import migrations

INDEX = "controlcenter_user_username_ci"


def rename_case_duplicates(apps, schema_editor):
    User = apps.get_model("auth", "User")
    AuditEntry = apps.get_model("controlcenter", "AuditEntry")
    seen = {name.lower() for name in User.objects.values_list("username", flat=True)}
    first = {}
    for user in User.objects.order_by("pk"):
        key = user.username.lower()
        if key not in first:
            first[key] = user.pk
            continue
        new = f"{user.username}-{user.pk}"
        while new.lower() in seen:
            new += "-"
        seen.add(new.lower())
        AuditEntry.objects.create(
            actor_kind="command_line",
            actor_name="",
            action="user.update",
            target=new,
            summary="username (case-insensitive duplicate renamed by a migration)",
            before={"username": user.username},
            after={"username": new},
        )
        user.username = new
        user.save(update_fields=["username"])


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("controlcenter", "0008_alias_revision"),
    ]

    operations = [
        migrations.RunPython(rename_case_duplicates, migrations.RunPython.noop),
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (lower(username))",
            f"DROP INDEX {INDEX}",
        ),
    ]
