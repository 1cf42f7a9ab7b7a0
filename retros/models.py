import uuid
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from escapes.models import Category, Escape, PipelineStage, Release
from teams.models import Membership, Team


class Phase(models.TextChoices):
    GATHER = "gather", "Gather"
    CATEGORIZE = "categorize", "Categorize"
    WHYS = "whys", "Five Whys"
    ACTIONS = "actions", "Actions"
    CLOSED = "closed", "Closed"


PHASE_ORDER: list[str] = [p.value for p in Phase]


class VotingState(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Retrospective(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="retros")
    title = models.CharField(max_length=200)
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="facilitated_retros"
    )
    release = models.ForeignKey(
        Release, on_delete=models.SET_NULL, null=True, blank=True, related_name="retros"
    )
    escapes = models.ManyToManyField(Escape, through="RetroEscape", related_name="retros")
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.GATHER)
    anonymous = models.BooleanField(default=False)
    # Every change to the retro or anything on its board increments this, inside the
    # change's transaction; the live board compares versions to know what it missed.
    version = models.PositiveIntegerField(default=1)
    focus_escape = models.ForeignKey(
        Escape, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The timer runs while `timer_ends_at` is set; paused, it keeps what was left instead.
    timer_ends_at = models.DateTimeField(null=True, blank=True)
    timer_paused_remaining = models.DurationField(null=True, blank=True)
    votes_per_person = models.PositiveSmallIntegerField(default=3)
    voting = models.CharField(
        max_length=16, choices=VotingState.choices, default=VotingState.NOT_STARTED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_closed(self) -> bool:
        return self.phase == Phase.CLOSED

    @property
    def phase_index(self) -> int:
        return PHASE_ORDER.index(self.phase)


class RetroEscape(models.Model):
    """An escape on a retro's board, in board order.

    In Gather any member may put an escape on the board: a facilitator's is kept at once, a
    member's is `proposed` until the facilitator keeps or removes it (retros/gather.py).
    `proposed_by` names who proposed it (none in an anonymous retro, as for whys).
    """

    retro = models.ForeignKey(Retrospective, on_delete=models.CASCADE, related_name="items")
    escape = models.ForeignKey(Escape, on_delete=models.PROTECT, related_name="retro_items")
    position = models.PositiveIntegerField(default=0)
    proposed = models.BooleanField(default=False)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["retro", "escape"], name="retroescape_unique")
        ]


class Vote(models.Model):
    """One dot of dot voting. A participant may stack dots on one escape, up to the
    retro's `votes_per_person` in all. The voter is kept to enforce that allowance and is
    never shown, in an anonymous retro or any other."""

    retro = models.ForeignKey(Retrospective, on_delete=models.CASCADE, related_name="votes")
    escape = models.ForeignKey(Escape, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["retro", "voter"], name="vote_retro_voter")]


class RootCauseKind(models.TextChoices):
    PROCESS_FAILURE = "process_failure", "Process failure"
    AUTOMATION_SHORTFALL = "automation_shortfall", "Automation shortfall"


WHY_TEXT_MAX = 1000


class Why(models.Model):
    """One answer in an escape's Five-Whys chain; `parent` lets chains branch."""

    retro = models.ForeignKey(Retrospective, on_delete=models.CASCADE, related_name="whys")
    escape = models.ForeignKey(Escape, on_delete=models.CASCADE, related_name="whys")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    text = models.CharField(max_length=WHY_TEXT_MAX)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    root_cause_kind = models.CharField(max_length=32, choices=RootCauseKind.choices, blank=True)
    # Bumped on every edit; an edit names the revision it started from (optimistic locking).
    revision = models.PositiveIntegerField(default=1)
    # Who changed the text last and when (null until edited; no editor in an anonymous retro).
    # `updated_at` moves with root-cause marking too, so it cannot say when the text changed.
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.text

    @property
    def is_root_cause(self) -> bool:
        return bool(self.root_cause_kind)

    def changeable_by(self, membership: Membership) -> bool:
        """Whether the member may edit or delete this why: its author (a writer still), or a
        facilitator or admin of the team. In an anonymous retro no author is stored, so only
        they can."""
        if not membership.can_write:
            return False
        return membership.can_facilitate or (
            self.author_id is not None and self.author_id == membership.user_id
        )


class WhyRevision(models.Model):
    """An earlier text of a why, kept when an edit replaced it: revision `revision` read
    `text`, written by `written_by` (none in an anonymous retro) at `written_at`."""

    why = models.ForeignKey(Why, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    text = models.CharField(max_length=WHY_TEXT_MAX)
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    written_at = models.DateTimeField()

    class Meta:
        ordering = ["-revision"]  # newest first, as the history shows them
        constraints = [
            models.UniqueConstraint(fields=["why", "revision"], name="why_revision_once"),
        ]

    def __str__(self) -> str:
        return f"{self.why_id} r{self.revision}"


class FactKind(models.TextChoices):
    TIMELINE = "timeline", "Timeline note"
    LOG = "log", "Log"
    DASHBOARD = "dashboard", "Dashboard"
    CI_RUN = "ci_run", "CI run"
    LINK = "link", "Other link"


# Every kind but a timeline note is a link, and needs its web address.
LINK_FACT_KINDS = frozenset({FactKind.LOG, FactKind.DASHBOARD, FactKind.CI_RUN, FactKind.LINK})
FACT_TEXT_MAX = 500
FACT_URL_MAX = 500


class EscapeFact(models.Model):
    """Something known about an escape, added in a retro for the Five Whys to build on: a
    timeline note, or a link to a log, a dashboard or a CI run (http or https only).

    Like whys, facts belong to one escape in one retro, and in an anonymous retro their
    author is not stored.
    """

    retro = models.ForeignKey(Retrospective, on_delete=models.CASCADE, related_name="facts")
    escape = models.ForeignKey(Escape, on_delete=models.CASCADE, related_name="facts")
    kind = models.CharField(max_length=16, choices=FactKind.choices)
    text = models.CharField(max_length=FACT_TEXT_MAX)
    url = models.URLField(max_length=FACT_URL_MAX, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["retro", "escape"], name="fact_retro_escape")]

    def __str__(self) -> str:
        return self.text

    @property
    def is_link(self) -> bool:
        return self.kind in LINK_FACT_KINDS

    @property
    def url_host(self) -> str:
        """Where the link goes, shown beside it: people see the site before they follow it."""
        return urlsplit(self.url).hostname or ""

    def deletable_by(self, membership: Membership) -> bool:
        """Its author (a writer still) or a facilitator or admin of the team; in an anonymous
        retro no author is stored, so only they can."""
        if not membership.can_write:
            return False
        return membership.can_facilitate or (
            self.author_id is not None and self.author_id == membership.user_id
        )


class ActionKind(models.TextChoices):
    NEW_TEST = "new_test", "New test at a stage"
    ENVIRONMENT_PARITY = "environment_parity", "Environment parity work"
    FLAKE_FIX = "flake_fix", "Flake fix"
    PROCESS_CHANGE = "process_change", "Process change"


class PushState(models.TextChoices):
    DRAFT = "draft", "Draft"
    QUEUED = "queued", "Queued"
    PUSHING = "pushing", "Pushing"
    PUSHED = "pushed", "Pushed"
    FAILED = "failed", "Failed"


class Tracker(models.TextChoices):
    NONE = "", "None"
    JIRA = "jira", "Jira"
    AZURE_DEVOPS = "azure_devops", "Azure DevOps"


# How a pushed action's note begins when the sync found a second ticket with its label
# (integrations/sync.py `duplicates_check`).
DUPLICATE_NOTE = "Duplicate ticket: "


@dataclass(frozen=True)
class TicketState:
    """Where an action's ticket stands, in words people read.

    The board, the summary page, its Markdown and the escape page all show these words, so
    they never disagree. `label` is the short state, `note` what it means or the tracker's
    message ("" when the label says it all), `tone` how the note reads: "info", "warning"
    or "error".
    """

    label: str
    note: str = ""
    tone: str = "info"

    def __str__(self) -> str:
        return f"{self.label} — {self.note}" if self.note else self.label


DONE_NOTE_MAX = 300
DONE_URL_MAX = 500


class PreventativeAction(models.Model):
    """The guardrail that keeps an escape from recurring. A hotfix is not one."""

    retro = models.ForeignKey(Retrospective, on_delete=models.CASCADE, related_name="actions")
    escape = models.ForeignKey(Escape, on_delete=models.CASCADE, related_name="actions")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=32, choices=ActionKind.choices)
    stage = models.ForeignKey(
        PipelineStage,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="actions",
        help_text="The stage that gets the guardrail.",
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10_000)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    tracker = models.CharField(max_length=16, choices=Tracker.choices, blank=True)
    push_state = models.CharField(max_length=16, choices=PushState.choices, default=PushState.DRAFT)
    external_key = models.CharField(max_length=64, blank=True)
    external_url = models.URLField(max_length=500, blank=True)
    sprint = models.CharField(max_length=200, blank=True)
    external_status = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    # Marked done in Leakseal itself, for an action without a tracker ticket (retros/
    # follow_through.py): who, what they said and where the guardrail can be seen. Empty when
    # the tracker's status set `done_at`.
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    done_note = models.CharField(max_length=DONE_NOTE_MAX, blank=True)
    done_url = models.URLField(max_length=DONE_URL_MAX, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(push_state="pushed") | ~Q(external_key=""),
                name="action_pushed_has_key",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def has_ticket(self) -> bool:
        """Whether a tracker ticket exists or is being made: its status, not Leakseal, then
        says when the action is done."""
        return bool(self.external_key) or self.push_state in (
            PushState.QUEUED,
            PushState.PUSHING,
            PushState.PUSHED,
        )

    @property
    def done_url_host(self) -> str:
        return urlsplit(self.done_url).hostname or ""

    def is_overdue(self, today: date) -> bool:
        return self.done_at is None and self.due_date is not None and self.due_date < today

    @property
    def overdue(self) -> bool:
        """Overdue today in the current time zone (pages run in the team's: teams.decorators)."""
        return self.is_overdue(timezone.localdate())

    @property
    def label(self) -> str:
        """The tag a tracker ticket carries so a retried push finds it instead of duplicating."""
        return f"leakseal-{self.uuid}"

    @property
    def ticket_state(self) -> TicketState:
        """The push state worded for people (reads `self.retro`: join or set it first).

        A draft of a closed retro stays one for good: closing queues a push only when the
        team has a tracker connected, and a draft is never pushed later.
        """
        match self.push_state:
            case PushState.PUSHED:
                if self.last_error.startswith(DUPLICATE_NOTE):  # found by the sync
                    return TicketState("Pushed", self.last_error, "warning")
                if self.last_error:  # pushed, but not where it should have gone
                    return TicketState("Pushed", f"Placement warning: {self.last_error}", "warning")
                return TicketState("Pushed")
            case PushState.FAILED:
                return TicketState(
                    "Push failed", self.last_error or "The tracker refused the ticket.", "error"
                )
            case PushState.PUSHING:  # integrations/push.py: a dead worker's push resumes
                return TicketState(
                    "Pushing…",
                    "A worker is on it; should it stop, another takes over within a minute.",
                )
            case PushState.QUEUED:  # a note is the last try's error; the push will retry
                return TicketState("Queued", self.last_error)
        if self.retro.is_closed:
            return TicketState(
                "Not pushed", "No tracker was connected when the retrospective closed."
            )
        return TicketState(
            "Draft", "Becomes a ticket when the retrospective closes, if a tracker is connected."
        )


class GuidingQuestions(models.Model):
    """A team's own guiding questions for the Five Whys of one category, one per line.

    No row means the defaults of retros/guide.py; resetting deletes the row, so a team that
    never edited its questions gets improved defaults as they come.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=32, choices=Category.choices)
    text = models.TextField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "category"], name="guiding_questions_unique")
        ]

    def __str__(self) -> str:
        return f"{self.team_id}: {self.category}"

    @property
    def questions(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]
