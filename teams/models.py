import functools
import hashlib
import zoneinfo
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone, e.g. Europe/Berlin.")


@functools.cache
def zone(key: str) -> zoneinfo.ZoneInfo:
    """ZoneInfo keeps only eight zones strongly; fifty teams in ten zones reread the tz files."""
    return zoneinfo.ZoneInfo(key)


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # How strict closing a retro is: every escape always needs a preventative action; with
    # this on it also needs a why marked as its root cause. New teams start strict; teams
    # that existed before the setting keep the rule they closed their retros under (their
    # migration sets False).
    close_requires_root_cause = models.BooleanField(
        "Closing a retro needs a root cause for every escape", default=True
    )
    # Whether a retro's join link lets someone who is not a member yet create an account (or
    # join with theirs) as a member of the team. Off by default: a link shared in a meeting
    # would otherwise let anyone it reaches into the team (docs/design.md, "Teams and people").
    join_link_sign_up = models.BooleanField(
        "People with a retro's join link may create an account", default=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zone(self.timezone)

    @property
    def close_rule(self) -> str:
        """The team's rule for closing a retro, in the words the board and settings show."""
        if self.close_requires_root_cause:
            return "Closing needs a preventative action and a root cause for every escape."
        return "Closing needs a preventative action for every escape."


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    FACILITATOR = "facilitator", "Facilitator"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"

    @property
    def can_write(self) -> bool:
        """Viewers (managers) read; everybody else records escapes, whys and actions."""
        return self.role != Role.VIEWER

    @property
    def can_facilitate(self) -> bool:
        return self.role in (Role.ADMIN, Role.FACILITATOR)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def digest_of(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class InvitationState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Used"
    REVOKED = "revoked", "Revoked"
    REPLACED = "replaced", "Replaced by a newer invitation"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """An email invitation to join a team with a role.

    The link carries a random token; only its SHA-256 digest is stored (like an API token's),
    so the database alone cannot be used to accept an invitation. Resending makes a new row
    with a new token and marks this one replaced.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    # The outcome of sending the email (after the commit): when it left, or why it did not.
    sent_at = models.DateTimeField(null=True, blank=True)
    send_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["team", "email"], name="invitation_team_email")]

    def __str__(self) -> str:
        return f"{self.email} to {self.team} as {self.role}"

    @staticmethod
    def digest_of(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    def state_at(self, now: datetime) -> InvitationState:
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.replaced_by_id is not None:
            return InvitationState.REPLACED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if now >= self.expires_at:
            return InvitationState.EXPIRED
        return InvitationState.PENDING
