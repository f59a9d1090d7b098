from django.db import migrations

from controlcenter.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("maillogs", "0001_initial"),
        ("jobs", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
