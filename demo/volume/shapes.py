"""The random shape of a team — what it breaks, where, how badly, when it ships — and how the
escapes are split over the teams. Every draw comes from the generator it is given, in order.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from demo.volume.knobs import CATEGORY_WEIGHTS, COMPONENTS, SEVERITY_WEIGHTS, SOURCE_WEIGHTS
from escapes.models import PipelineStage
from teams.models import Team


@dataclass
class Choice:
    """Fast repeated weighted choice from fixed weights."""

    values: list[Any]
    cum: list[float]

    @classmethod
    def of(cls, weights: dict[Any, float]) -> Choice:
        values = list(weights)
        cum, total = [], 0.0
        for value in values:
            total += weights[value]
            cum.append(total)
        return cls(values, cum)

    def pick(self, rng: random.Random) -> Any:
        return rng.choices(self.values, cum_weights=self.cum)[0]


@dataclass
class TeamShape:
    team: Team
    stages: list[PipelineStage]
    components: Choice
    categories: Choice
    stage_choice: Choice
    severities: Choice
    sources: Choice
    release_weekday: int
    release_hour: float
    trend: float  # escapes per release at the end relative to the start, minus 1
    catch_scale: float

    @classmethod
    def draw(cls, team: Team, rng: random.Random) -> TeamShape:
        stages = list(team.stages.order_by("position", "id"))
        picked = rng.sample(COMPONENTS, rng.randint(5, 15))
        # Zipf-like: the first components of a team get most of its escapes.
        components = {c: 1 / (i + 1) ** 1.1 for i, c in enumerate(picked)}
        stage_weights: dict[Any, float] = {s: 0.45 / (i + 1) ** 0.7 for i, s in enumerate(stages)}
        stage_weights[None] = 0.05
        return cls(
            team=team,
            stages=stages,
            components=Choice.of(components),
            categories=Choice.of(_weighted(rng, CATEGORY_WEIGHTS, 0.4)),
            stage_choice=Choice.of(_weighted(rng, stage_weights, 0.5)),
            severities=Choice.of(_weighted(rng, SEVERITY_WEIGHTS, 0.2)),
            sources=Choice.of(_weighted(rng, SOURCE_WEIGHTS, 0.5)),
            release_weekday=rng.randrange(4),  # Monday to Thursday; nobody ships on Friday
            release_hour=rng.uniform(9, 16),
            trend=rng.uniform(-0.5, 0.8),
            catch_scale=rng.lognormvariate(0, 0.5),
        )


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` over `parts` unevenly (lognormal weights), largest remainders rounding."""
    weights = [rng.lognormvariate(0, 0.8) for _ in range(parts)]
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(parts), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _weighted(rng: random.Random, weights: dict[Any, float], noise: float) -> dict[Any, float]:
    """The base weights, each scaled by a gamma draw: every team skewed its own way."""
    return {k: w * rng.gammavariate(1 / noise, noise) for k, w in weights.items()}
