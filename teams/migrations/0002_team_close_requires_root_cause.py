from django.db import migrations, models


class Migration(migrations.Migration):
    """The per-team rule "closing a retro needs a root cause for every escape".

    Teams that exist now closed their retros on actions alone; turning the stricter rule on
    under them would refuse a close they expect to go through, so the field is added with
    False for every existing row. Only then does its default become True, which is what a
    team made from here on gets (the model's default).
    """

    dependencies = [
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="team",
            name="close_requires_root_cause",
            field=models.BooleanField(
                default=False,
                verbose_name="Closing a retro needs a root cause for every escape",
            ),
        ),
        migrations.AlterField(
            model_name="team",
            name="close_requires_root_cause",
            field=models.BooleanField(
                default=True,
                verbose_name="Closing a retro needs a root cause for every escape",
            ),
        ),
    ]
