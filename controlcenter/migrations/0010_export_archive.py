"""An export's files, snapshot and replaced files are stored compressed in ``archive``.

The JSON columns keep their names (``files``, ``snapshot``, ``replaced``) and the rows recorded
before; only the model's field names change (the model reads either).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("controlcenter", "0009_user_name_case_insensitive"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("export", "files", "files_json"),
                migrations.RenameField("export", "snapshot", "snapshot_json"),
                migrations.RenameField("export", "replaced", "replaced_json"),
                migrations.AlterField(
                    model_name="export",
                    name="files_json",
                    field=models.JSONField(
                        blank=True, db_column="files", default=dict, verbose_name="Files"
                    ),
                ),
                migrations.AlterField(
                    model_name="export",
                    name="snapshot_json",
                    field=models.JSONField(
                        blank=True,
                        db_column="snapshot",
                        default=dict,
                        verbose_name="Policy snapshot",
                    ),
                ),
                migrations.AlterField(
                    model_name="export",
                    name="replaced_json",
                    field=models.JSONField(
                        blank=True,
                        db_column="replaced",
                        default=dict,
                        verbose_name="Files replaced",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="export",
            name="archive",
            field=models.BinaryField(
                blank=True, default=bytes, editable=False, verbose_name="Archive"
            ),
        ),
    ]
