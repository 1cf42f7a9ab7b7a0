"""Reads of retrospectives, always scoped to one team, with their joins done up front.

`retro_board` is what the board, the summary and the Markdown export render: a fixed
number of queries however many escapes, whys and actions the retro has.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.auth.models import User
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from escapes.models import Category, Escape, PipelineStage
from escapes.selectors import escapes_of_team, sealed_forerunners, stages_of_team
from escapes.timespans import format_duration
from retros.closing import CloseGap, close_gaps
from retros.guide import Guide, guide_of
from retros.models import (
    EscapeFact,
    GuidingQuestions,
    PreventativeAction,
    RetroEscape,
    Retrospective,
    RootCauseKind,
    Vote,
    VotingState,
    Why,
    WhyRevision,
)
from teams.models import Team

# The create form lists escapes not yet in any retro, plus those detected this recently.
RECENT_ESCAPES = timedelta(days=90)
PICKABLE_ESCAPES_MAX = 200
UNCLASSIFIED = "Unclassified"


# The overview's column is narrow: one word per leak bucket (the card says it in full).
CATEGORY_SHORT: dict[str, str] = {
    Category.COVERAGE_GAP: "Coverage",
    Category.ENVIRONMENT_MISMATCH: "Environment",
    Category.FLAKINESS: "Flaky",
}


@dataclass
class WhyNode:
    why: Why
    children: list["WhyNode"] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclass
class EscapeCard:
    """One escape on the board: its classification, its why trees and its actions."""

    escape: Escape
    whys: list[WhyNode]  # the roots of its chains, oldest first
    actions: list[PreventativeAction]
    facts: list[EscapeFact] = field(default_factory=list)  # oldest first
    why_count: int = 0
    votes: int = 0  # dots on this escape, from everybody; who cast them is never shown
    my_votes: int = 0  # of those, the viewing member's own
    # Proposed by a member in Gather, waiting for the facilitator to keep or remove it;
    # `proposed_by` is None in an anonymous retro (retros/gather.py).
    proposed: bool = False
    proposed_by: User | None = None
    # Set when the escape repeats one sealed before it was detected (docs/metrics.md).
    re_escape: "ReEscape | None" = None
    # The tests attached to it (evidence/): how many, and the newest attachment's id.
    tests_attached: int = 0
    tests_last: int | None = None

    @property
    def tests_key(self) -> str:
        """What the card's test panel (evidence/escape_tests.py) depends on: the board keeps
        a panel it has loaded across a re-rendered card with the same key, instead of every
        open board fetching it again at every change of the card."""
        escape = self.escape
        release = escape.release
        parts = (
            escape.stage_id,
            escape.component,
            escape.category,
            escape.released_at,
            escape.detected_at,
            release.pk if release else None,
            release.released_at if release else None,
            self.tests_attached,
            self.tests_last,
        )
        return "|".join("" if part is None else str(part) for part in parts)

    @property
    def deficit_text(self) -> str:
        return format_duration(self.escape.detection_deficit)

    @property
    def needs_action(self) -> bool:
        return not self.actions

    @property
    def category_short(self) -> str:
        """The category in a word, for the board's overview; empty when not classified."""
        return CATEGORY_SHORT.get(self.escape.category, "")

    @property
    def has_root_cause(self) -> bool:
        return bool(self.root_causes())

    def root_causes(self) -> list[Why]:
        found: list[Why] = []
        stack = list(reversed(self.whys))
        while stack:
            node = stack.pop()
            if node.why.is_root_cause:
                found.append(node.why)
            stack.extend(reversed(node.children))
        return found


@dataclass
class ReEscape:
    """The sealed escape this one repeats (same component and category), and its done
    actions: the guardrail that did not hold."""

    earlier: Escape
    actions: list[PreventativeAction]


@dataclass
class BoardTotals:
    escapes: int
    whys: int
    actions: int
    root_causes: dict[str, int]  # kind label -> count
    categories: dict[str, int]  # category label -> count; "Unclassified" for none
    escapes_without_action: int
    votes: int  # dots cast, all escapes together


@dataclass
class Board:
    retro: Retrospective
    cards: list[EscapeCard]
    stages: list[PipelineStage]
    members: list[User]
    votes_used: int = 0  # the viewing member's dots, all escapes together

    @property
    def votes_left(self) -> int:
        return max(0, self.retro.votes_per_person - self.votes_used)

    def card(self, escape_id: int) -> EscapeCard:
        for card in self.cards:
            if card.escape.pk == escape_id:
                return card
        raise Http404("No such escape in this retrospective")

    @property
    def proposals(self) -> list[EscapeCard]:
        """The escapes members proposed that wait for the facilitator's keep or remove."""
        return [card for card in self.cards if card.proposed]

    @property
    def missing_actions(self) -> list[Escape]:
        return [card.escape for card in self.cards if card.needs_action]

    @property
    def close_gaps(self) -> list[CloseGap]:
        """What still keeps the retro from closing, as `retro_close` would refuse it."""
        return close_gaps(
            [card.escape for card in self.cards],
            with_action={card.escape.pk for card in self.cards if card.actions},
            with_root_cause={card.escape.pk for card in self.cards if card.has_root_cause},
            requires_root_cause=self.retro.team.close_requires_root_cause,
        )

    @property
    def totals(self) -> BoardTotals:
        kinds: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        for card in self.cards:
            kinds.update(why.get_root_cause_kind_display() for why in card.root_causes())
            counts[card.escape.get_category_display() or UNCLASSIFIED] += 1
        categories = {c.label: counts[c.label] for c in Category if counts[c.label]}
        if counts[UNCLASSIFIED]:
            categories[UNCLASSIFIED] = counts[UNCLASSIFIED]
        return BoardTotals(
            escapes=len(self.cards),
            whys=sum(card.why_count for card in self.cards),
            actions=sum(len(card.actions) for card in self.cards),
            root_causes={k.label: kinds[k.label] for k in RootCauseKind},
            categories=categories,
            escapes_without_action=len(self.missing_actions),
            votes=sum(card.votes for card in self.cards),
        )


def retros_for_team(team: Team) -> QuerySet[Retrospective]:
    return (
        Retrospective.objects.filter(team=team)
        .select_related("facilitator", "release")
        .annotate(
            escape_count=Count("items", distinct=True),
            action_count=Count("actions", distinct=True),
        )
        .order_by("-created_at", "-id")
    )


def get_retro_for_team(team: Team, pk: int) -> Retrospective:
    """The team's retro, or 404: another team's retro id is indistinguishable from none."""
    return get_object_or_404(
        Retrospective.objects.select_related("team", "facilitator", "release"), team=team, pk=pk
    )


def get_retro_escape(retro: Retrospective, escape_id: int) -> Escape:
    """An escape of this retro, or 404."""
    return get_object_or_404(
        escapes_of_team(retro.team_id).filter(retro_items__retro=retro), pk=escape_id
    )


def get_team_escape(team: Team, escape_id: int) -> Escape:
    return get_object_or_404(escapes_of_team(team.pk), pk=escape_id)


def get_why_for_retro(retro: Retrospective, why_id: int) -> Why:
    why = get_object_or_404(Why, retro=retro, pk=why_id)
    why.retro = retro  # the same instance, so a service's lock refreshes the caller's copy
    return why


def get_action_for_retro(retro: Retrospective, action_id: int) -> PreventativeAction:
    action = get_object_or_404(PreventativeAction, retro=retro, pk=action_id)
    action.retro = retro
    return action


def _why_forest(whys: list[Why]) -> dict[int, list[WhyNode]]:
    """The why trees of each escape (escape id -> roots), children in creation order."""
    nodes = {why.pk: WhyNode(why) for why in whys}
    roots: dict[int, list[WhyNode]] = {}
    for why in whys:
        node = nodes[why.pk]
        parent = nodes.get(why.parent_id) if why.parent_id else None
        if parent is not None:
            parent.children.append(node)
        else:
            roots.setdefault(why.escape_id, []).append(node)
    return roots


def _vote_counts(retro: Retrospective, voter: User | None) -> dict[int, tuple[int, int]]:
    """escape id -> (all votes, the voter's own), in one query; never who voted."""
    mine = Count("id", filter=Q(voter=voter)) if voter is not None else Value(0)
    rows = (
        Vote.objects.filter(retro=retro)
        .values("escape_id")
        .annotate(total=Count("id"), mine=mine)
        .order_by()
    )
    return {row["escape_id"]: (row["total"], row["mine"]) for row in rows}


def my_votes(retro: Retrospective, voter: User) -> dict[int, int]:
    """escape id -> the voter's own dots on it (empty before voting opens)."""
    if retro.voting == VotingState.NOT_STARTED:
        return {}
    rows = (
        Vote.objects.filter(retro=retro, voter=voter)
        .values("escape_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["escape_id"]: row["n"] for row in rows}


def get_fact_for_retro(retro: Retrospective, fact_id: int) -> EscapeFact:
    fact = get_object_or_404(EscapeFact, retro=retro, pk=fact_id)
    fact.retro = retro  # the same instance, so a service's lock refreshes the caller's copy
    return fact


def facts_of_retro(retro: Retrospective) -> QuerySet[EscapeFact]:
    """The retro's facts, oldest first, with their authors (one query for the whole board)."""
    return (
        EscapeFact.objects.filter(retro=retro).select_related("author").order_by("created_at", "id")
    )


def why_history() -> Prefetch:
    """Each why's earlier versions, newest first (one query for the whole board)."""
    return Prefetch(
        "revisions",
        queryset=WhyRevision.objects.select_related("written_by").order_by("-revision"),
    )


def retro_board(retro: Retrospective, *, voter: User | None = None) -> Board:
    """Everything the board shows, in seven queries whatever its size (eight when there are
    whys: their earlier versions).

    Once voting has closed the escapes come most-voted first (board order breaks ties);
    `voter` is the member viewing it, whose own votes the cards count as well.
    """
    items = list(
        RetroEscape.objects.filter(retro=retro)
        .select_related("escape__stage", "escape__release", "proposed_by")
        .annotate(
            tests_attached=Count("escape__attached_tests"),
            tests_last=Max("escape__attached_tests__id"),
        )
        .order_by("position", "id")
    )
    whys = list(
        Why.objects.filter(retro=retro)
        .select_related("author", "edited_by")
        .prefetch_related(why_history())
        .order_by("created_at", "id")
    )
    actions = list(
        PreventativeAction.objects.filter(retro=retro)
        .select_related("owner", "stage", "done_by")
        .order_by("created_at", "id")
    )
    facts_by_escape: dict[int, list[EscapeFact]] = {}
    for fact in facts_of_retro(retro):
        facts_by_escape.setdefault(fact.escape_id, []).append(fact)
    forest = _why_forest(whys)
    why_counts = Counter(why.escape_id for why in whys)
    actions_by_escape: dict[int, list[PreventativeAction]] = {}
    for action in actions:
        action.retro = retro  # its ticket state reads it; the same instance, no query
        actions_by_escape.setdefault(action.escape_id, []).append(action)
    votes = _vote_counts(retro, voter) if retro.voting != VotingState.NOT_STARTED else {}
    cards = [
        EscapeCard(
            escape=item.escape,
            whys=forest.get(item.escape_id, []),
            actions=actions_by_escape.get(item.escape_id, []),
            facts=facts_by_escape.get(item.escape_id, []),
            proposed=item.proposed,
            proposed_by=item.proposed_by,
            why_count=why_counts[item.escape_id],
            votes=votes.get(item.escape_id, (0, 0))[0],
            my_votes=votes.get(item.escape_id, (0, 0))[1],
            tests_attached=item.tests_attached,
            tests_last=item.tests_last,
        )
        for item in items
    ]
    _mark_re_escapes(retro.team_id, cards)
    if retro.voting == VotingState.CLOSED:
        cards.sort(key=lambda card: -card.votes)  # stable: ties keep the board order
    stages = list(stages_of_team(retro.team_id))
    members = list(
        User.objects.filter(memberships__team_id=retro.team_id).order_by("username").distinct()
    )
    return Board(
        retro=retro,
        cards=cards,
        stages=stages,
        members=members,
        votes_used=sum(card.my_votes for card in cards),
    )


def _mark_re_escapes(team_id: int, cards: list[EscapeCard]) -> None:
    """Set `re_escape` on the cards of re-escapes: two queries when there are some (the
    earlier escapes, their done actions), one when none could be, none without components."""
    forerunners = sealed_forerunners(team_id, [card.escape for card in cards])
    if not forerunners:
        return
    done: dict[int, list[PreventativeAction]] = {}
    for action in PreventativeAction.objects.filter(
        escape_id__in={e.pk for e in forerunners.values()}, done_at__isnull=False
    ).order_by("done_at", "id"):
        done.setdefault(action.escape_id, []).append(action)
    for card in cards:
        earlier = forerunners.get(card.escape.pk)
        if earlier is not None:
            card.re_escape = ReEscape(earlier=earlier, actions=done.get(earlier.pk, []))


# --- The earlier retros' open actions, shown first on a new retro's board.

EARLIER_ACTIONS_MAX = 30


@dataclass
class EarlierActions:
    """The previous retros' actions of the team that are not done (overdue first), then those
    done since this retro began (the team closed them while reviewing)."""

    actions: list[PreventativeAction]
    more: int  # how many more there are than listed
    today: date

    @property
    def overdue(self) -> int:
        return sum(1 for action in self.actions if action.is_overdue(self.today))

    @property
    def still_open(self) -> int:
        return sum(1 for action in self.actions if action.done_at is None) + self.more

    @property
    def done_since(self) -> int:
        """Done since this retro began (listed last)."""
        return sum(1 for action in self.actions if action.done_at is not None)


def earlier_open_actions(retro: Retrospective) -> EarlierActions:
    """The actions of the team's closed retros created before `retro` that are not done, or
    were done since `retro` was created: overdue ones first (the longest overdue first), then
    the others by due date (undated last), then the ones just done. At most two queries
    whatever their number (the second counts those beyond the first EARLIER_ACTIONS_MAX)."""
    today = timezone.localdate(timezone=retro.team.tzinfo)
    listed = PreventativeAction.objects.filter(
        Q(done_at__isnull=True) | Q(done_at__gte=retro.created_at),
        retro__team_id=retro.team_id,
        retro__closed_at__isnull=False,
        retro__created_at__lt=retro.created_at,
    ).exclude(retro_id=retro.pk)
    rows: list[PreventativeAction] = list(
        listed.select_related("retro", "escape", "owner", "stage", "done_by")
        .annotate(
            rank=Case(
                When(done_at__isnull=False, then=Value(2)),
                When(due_date__lt=today, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", F("due_date").asc(nulls_last=True), "created_at", "id")[
            : EARLIER_ACTIONS_MAX + 1
        ]
    )
    more = 0
    if len(rows) > EARLIER_ACTIONS_MAX:
        more = listed.filter(done_at__isnull=True).count() - sum(
            1 for action in rows[:EARLIER_ACTIONS_MAX] if action.done_at is None
        )
        rows = rows[:EARLIER_ACTIONS_MAX]
    return EarlierActions(actions=rows, more=more, today=today)


def team_guide(team: Team) -> Guide:
    """The team's guiding questions per category (the defaults where it has none), in one
    query."""
    return guide_of(list(GuidingQuestions.objects.filter(team=team)))


def team_member_names(team: Team) -> list[str]:
    """Every username, first and last name in the team: what a blameless why avoids."""
    names: list[str] = []
    for row in User.objects.filter(memberships__team=team).values_list(
        "username", "first_name", "last_name"
    ):
        names.extend(name for name in row if name)
    return names


def escapes_addable_to_retro(retro: Retrospective) -> QuerySet[Escape]:
    """The team's escapes not yet on this board, newest first (for the Gather phase)."""
    return (
        escapes_of_team(retro.team_id)
        .exclude(retro_items__retro=retro)
        .order_by("-detected_at", "-id")[:PICKABLE_ESCAPES_MAX]
    )


def escapes_to_pick(team: Team) -> list[Escape]:
    """Escapes to offer a new retro: those in no retro yet, and the recent ones.

    Each carries `retro_count`, so the form can say which were already discussed.
    """
    since = timezone.now() - RECENT_ESCAPES
    return list(
        escapes_of_team(team.pk)
        .select_related("release")
        .annotate(retro_count=Count("retro_items", distinct=True))
        .filter(Q(retro_count=0) | Q(detected_at__gte=since))
        .order_by("-detected_at", "-id")[:PICKABLE_ESCAPES_MAX]
    )


# --- For the apps above retros (integrations, insights): base querysets they narrow.


def actions_of_team(team_id: int) -> QuerySet[PreventativeAction]:
    """Every preventative action of the team's retros."""
    return PreventativeAction.objects.filter(retro__team_id=team_id)


def actions_of_retro(retro: Retrospective) -> QuerySet[PreventativeAction]:
    return PreventativeAction.objects.filter(retro=retro)


def actions_of_escape(escape_id: int) -> QuerySet[PreventativeAction]:
    """The escape's actions, in every retro it was in."""
    return PreventativeAction.objects.filter(escape_id=escape_id)


def actions_of_escapes(escapes: QuerySet[Escape]) -> QuerySet[PreventativeAction]:
    """The actions of these escapes (a queryset the caller has scoped to one team)."""
    return PreventativeAction.objects.filter(escape__in=escapes)


def action_by_pk(action_id: int) -> QuerySet[PreventativeAction]:
    """The action as a queryset of at most one row, for a task that holds only its id: the
    caller adds its joins and takes `.first()` (None when the action is gone)."""
    return PreventativeAction.objects.filter(pk=action_id)


def get_action_for_team(team: Team, pk: int) -> PreventativeAction:
    """The team's action with its retro and team, or 404 for another team's action."""
    return get_object_or_404(
        PreventativeAction.objects.select_related("retro__team", "done_by"), pk=pk, retro__team=team
    )


def retro_of_action(action: PreventativeAction) -> Retrospective:
    return Retrospective.objects.get(pk=action.retro_id)


def whys_of_action(action: PreventativeAction) -> QuerySet[Why]:
    """The whys of the action's escape in the action's retro."""
    return Why.objects.filter(retro_id=action.retro_id, escape_id=action.escape_id)
