from django.db import migrations

from controlcenter.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("aliases", "0001_initial"),
        ("relaypolicy", "0002_policy_row_and_roles"),
    ]

    operations = [
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
