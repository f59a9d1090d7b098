"""The shared cache's table (controlcenter.policycache), when the cache is the database."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # Idempotent; does nothing when CC_CACHE_URL points at Redis or memcached.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("controlcenter", "0006_audit_actor_kind")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
