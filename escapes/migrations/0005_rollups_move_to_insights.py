# The rollup models moved to the insights app. Only Django's model state changes here: the
# tables stay, and insights' 0001 takes them over (and renames them) in the same migrate.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('escapes', '0004_escape_detected_desc'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='EscapeRollup'),
                migrations.DeleteModel(name='ReleaseRollup'),
            ],
            database_operations=[],
        ),
    ]
