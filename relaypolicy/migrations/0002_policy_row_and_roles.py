from django.db import migrations

from controlcenter.roles import sync_role_groups


def create_policy_row(apps, schema_editor):
    apps.get_model("relaypolicy", "RelayPolicy").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("relaypolicy", "0001_initial"),
        ("controlcenter", "0002_roles_and_settings"),
    ]

    operations = [
        migrations.RunPython(create_policy_row, migrations.RunPython.noop),
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
