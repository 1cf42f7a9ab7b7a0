# The rollup tables were created by escapes' 0002 and 0003 and moved here: take over their
# state under their old table names, then rename the tables to this app's.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('escapes', '0005_rollups_move_to_insights'),
        ('teams', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='EscapeRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('month', models.DateField(help_text="The 1st of the month, in the team's local time.")),
                        ('timezone', models.CharField(max_length=64)),
                        ('escapes', models.PositiveIntegerField(help_text='Rows in `columns`, data problems included.')),
                        ('columns', models.BinaryField()),
                        ('meta', models.JSONField(default=dict)),
                        ('digest', models.CharField(max_length=40)),
                        ('computed_at', models.DateTimeField()),
                        ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='teams.team')),
                    ],
                    options={
                        'db_table': 'escapes_escaperollup',
                        'constraints': [models.UniqueConstraint(fields=('team', 'month'), name='rollup_unique_team_month')],
                    },
                ),
                migrations.CreateModel(
                    name='ReleaseRollup',
                    fields=[
                        ('team', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='teams.team')),
                        ('releases', models.PositiveIntegerField()),
                        ('columns', models.BinaryField()),
                        ('meta', models.JSONField(default=dict)),
                        ('digest', models.CharField(max_length=40)),
                        ('computed_at', models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'escapes_releaserollup',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='escaperollup', table=None),
        migrations.AlterModelTable(name='releaserollup', table=None),
    ]
