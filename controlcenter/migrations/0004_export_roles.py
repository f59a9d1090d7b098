from django.db import migrations

from controlcenter.roles import sync_role_groups


class Migration(migrations.Migration):
    dependencies = [
        ("controlcenter", "0003_export_auditentry"),
        ("relaypolicy", "0002_policy_row_and_roles"),
        ("aliases", "0002_roles"),
    ]

    operations = [
        # Viewers may read the export history and the audit log; nobody may change them.
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
