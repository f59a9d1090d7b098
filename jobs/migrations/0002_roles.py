from django.db import migrations

from controlcenter.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_initial"),
        ("controlcenter", "0005_export_settings_permission_and_replaced_files"),
    ]

    operations = [
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
