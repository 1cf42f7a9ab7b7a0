"""What teams' writes announce, for the apps that build on teams (escapes/).

Sent inside the writing transaction: a receiver that writes does so in that transaction.
"""

from django.dispatch import Signal

# A team was created; its row is saved. escapes/ gives it the default pipeline stages.
team_created = Signal()
