from django.db import migrations

from controlcenter.roles import sync_role_groups


def create_settings_row(apps, schema_editor):
    apps.get_model("controlcenter", "ServerSettings").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("controlcenter", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_settings_row, migrations.RunPython.noop),
        migrations.RunPython(sync_role_groups, migrations.RunPython.noop),
    ]
