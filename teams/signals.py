"""What teams' writes announce, for the apps that build on teams (escapes/).

Sent inside the writing transaction: a receiver that writes does so in that transaction.
"""

from django.dispatch import Signal

# A team was created; its row is saved. escapes/ gives it its pipeline stages: `stages`, the
# names its creator listed, or None for the defaults (Unit, Integration, E2E). A receiver may
# refuse with a ValidationError, which rolls the team back.
team_created = Signal()
