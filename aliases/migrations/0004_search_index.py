"""A trigram index for the alias search (substring of the alias or the real address).

PostgreSQL only, with the pg_trgm extension: trusted since PostgreSQL 13, so the database's
owner may create it without being a superuser. When it cannot be created (an older server,
or a role without CREATE on the database) the migration says so and carries on: the search
then scans the table, which stays correct, only slower. To add the index later, have a
superuser run ``CREATE EXTENSION pg_trgm;`` in the database, then
``python manage.py migrate aliases 0003 && python manage.py migrate aliases``.
SQLite scans the table (see ``aliases.services.alias_search``).
"""

import sys

from django.db import DatabaseError, migrations, transaction

INDEX = "aliases_alias_search_trgm"
# The expression aliases.services._SearchText renders: keep them identical.
EXPRESSION = "upper((pattern)::text || chr(10) || (target)::text)"


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError as error:
            sys.stderr.write(
                "  warning: the pg_trgm extension could not be created "
                f"({str(error).strip().splitlines()[0]}); the alias search will scan the table. "
                "A superuser can run CREATE EXTENSION pg_trgm; in this database, then "
                "'migrate aliases 0003' and 'migrate aliases' add the index.\n"
            )
            return
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON aliases_alias "
            f"USING gin (({EXPRESSION}) gin_trgm_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("aliases", "0003_upload_quota"),
    ]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
