"""One team's escapes, drawn one at a time, and the preventative actions its retros agreed.

Every draw comes from the team's one generator, in a fixed order: that order is what makes
the same --seed give the same data, so a change here changes the generated register.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User

from demo.volume.knobs import (
    ACTION_KINDS,
    FAULTS,
    RECENT,
    RETRO_SHARE,
    SHARE_BEFORE_RELEASE,
    SHARE_NEGATIVE,
    SHARE_NO_MERGE,
    SHARE_PUSHED,
    D,
    H,
)
from demo.volume.plan import Plan
from demo.volume.shapes import TeamShape
from escapes.models import Escape, PipelineStage, Release
from retros.models import ActionKind, Phase, PreventativeAction, PushState, Retrospective, Tracker


@dataclass
class ActionPlan:
    created_at: datetime
    done_at: datetime | None
    due_date: date


@dataclass
class Generated:
    escape: Escape
    action: ActionPlan | None = None


@dataclass
class TeamRun:
    shape: TeamShape
    plan: Plan
    rng: random.Random
    releases: list[Release]
    release_cum: list[float]
    serial: int = 0
    retros: dict[tuple[int, int], Retrospective] = field(default_factory=dict)

    def escape(self) -> Generated:
        """The next escape: its release, its times, how it is classified, and whether a
        retro gave it an action (which seals it once done)."""
        rng, shape = self.rng, self.shape
        release = rng.choices(self.releases, cum_weights=self.release_cum)[0]
        merged, detected, resolved = self._times(release.released_at)
        severity, category, stage = self._classification(detected)
        component = shape.components.pick(rng)
        self.serial += 1
        escape = Escape(
            team=shape.team,
            title=f"{component}: {rng.choice(FAULTS)} (#{self.serial})",
            merged_at=merged,
            released_at=release.released_at,
            detected_at=detected,
            resolved_at=resolved,
            category=category,
            stage=stage,
            severity=severity,
            component=component,
            release=release,
            source=shape.sources.pick(rng),
            created_at=detected + timedelta(minutes=rng.uniform(1, 240)),
        )
        generated = Generated(escape, action=self._action_if_held(escape))
        escape.updated_at = max(
            t for t in (escape.created_at, resolved, escape.sealed_at) if t is not None
        )
        return generated

    def _times(self, released: datetime) -> tuple[datetime | None, datetime, datetime | None]:
        """Merged, detected and resolved, with the data problems imports bring."""
        rng, end = self.rng, self.plan.end
        detected = self._detected(released)
        roll = rng.random()
        if roll < SHARE_BEFORE_RELEASE:
            # Reported against a release it was found before: an import's mistake.
            detected = released - H * rng.lognormvariate(math.log(6), 0.8)
        merged: datetime | None = released - H * min(rng.lognormvariate(math.log(24), 1.0), 1440)
        if roll > 1 - SHARE_NO_MERGE:
            merged = None
        elif roll > 1 - SHARE_NO_MERGE - SHARE_NEGATIVE:
            merged = detected + H * rng.lognormvariate(math.log(10), 1.0)  # the fix's merge
        resolved = None
        if rng.random() < 0.9:
            resolved = detected + H * rng.lognormvariate(math.log(20), 1.2)
            resolved = resolved if resolved <= end else None
        return merged, detected, resolved

    def _detected(self, released: datetime) -> datetime:
        """Time in production is lognormal: hours to weeks; weekend finds wait for Monday."""
        rng, end = self.rng, self.plan.end
        detected = released + H * min(rng.lognormvariate(math.log(36), 1.5), 24 * 150)
        if detected > end:
            detected = released + (end - released) * rng.random()
        local = detected.astimezone(self.shape.team.tzinfo)
        if local.weekday() >= 5 and rng.random() < 0.75:
            monday = local.date() + timedelta(days=7 - local.weekday())
            at = datetime.combine(monday, datetime.min.time(), local.tzinfo)
            moved = (at + H * rng.uniform(8, 12)).astimezone(UTC)
            detected = moved if moved <= end else detected
        return detected

    def _classification(self, detected: datetime) -> tuple[str, str, PipelineStage | None]:
        """Severity, category and stage; recent escapes are often not yet classified."""
        rng, shape = self.rng, self.shape
        severity = shape.severities.pick(rng)
        category = shape.categories.pick(rng)
        unclassified = 0.6 if self.plan.end - detected < RECENT else 0.06
        stage = shape.stage_choice.pick(rng)
        if rng.random() < unclassified:
            category, stage = "", None
        return severity, category, stage

    def _action_if_held(self, escape: Escape) -> ActionPlan | None:
        """Retros look at escapes resolved a while ago, the more severe the more often."""
        resolved = escape.resolved_at
        if resolved is None or self.plan.end - resolved <= RECENT:
            return None
        if self.rng.random() >= RETRO_SHARE[escape.severity]:
            return None
        return self._action(escape, resolved)

    def _action(self, escape: Escape, resolved: datetime) -> ActionPlan:
        """The retro's preventative action; the escape is sealed when it is done."""
        rng, end = self.rng, self.plan.end
        created = min(resolved + D * rng.lognormvariate(math.log(3), 0.6), end)
        due = (created + 21 * D).date()
        done = None
        if rng.random() < 0.8:
            done = created + D * rng.lognormvariate(math.log(14), 0.7)
            done = done if done <= end else None
        escape.sealed_at = done
        return ActionPlan(created_at=created, done_at=done, due_date=due)

    def retro_for(self, at: datetime, facilitator: User) -> Retrospective:
        """The team's retro of that month (created when first needed)."""
        local = at.astimezone(self.shape.team.tzinfo)
        key = (local.year, local.month)
        if key not in self.retros:
            retro = Retrospective(
                team=self.shape.team,
                title=f"Escapes of {local:%B %Y}",
                facilitator=facilitator,
                phase=Phase.CLOSED,
                created_at=at,
                closed_at=min(at + 2 * H, self.plan.end),
            )
            retro.save()
            self.retros[key] = retro
        return self.retros[key]


def actions_for(run: TeamRun, batch: Sequence[Generated], facilitator: User) -> list[Any]:
    """The actions of a written batch (their keys name the escapes' pks), in their retros."""
    actions = []
    for item in batch:
        plan, escape = item.action, item.escape
        if plan is None:
            continue
        pushed = run.rng.random() < SHARE_PUSHED
        state = PushState.PUSHED if pushed else run.rng.choice([PushState.DRAFT, PushState.FAILED])
        actions.append(
            PreventativeAction(
                retro=run.retro_for(plan.created_at, facilitator),
                escape=escape,
                kind=ACTION_KINDS.get(escape.category, ActionKind.PROCESS_CHANGE),
                stage=escape.stage,
                title=f"Guardrail for {escape.title}"[:200],
                due_date=plan.due_date,
                tracker=Tracker.JIRA if state != PushState.DRAFT else Tracker.NONE,
                push_state=state,
                external_key=f"GEN-{escape.pk}" if pushed else "",
                done_at=plan.done_at,
                created_at=plan.created_at,
                updated_at=plan.done_at or plan.created_at,
            )
        )
    return actions
