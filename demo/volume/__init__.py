"""Realistic volume for demos and benchmarks (`manage.py generate_escapes`).

What "realistic" means here (each number is a knob in `knobs.py`, chosen to look like a busy
organisation, not measured from one):

- Teams gen-001, gen-002, … in a mix of time zones with the default stages, or `--into` one
  existing team. Escapes are spread over the teams unevenly (a lognormal weight per team).
- Every team ships weekly (a fixed weekday, office hours, a few weeks skipped); most releases
  report StageCatch counts. Escapes belong to a release, more of them in a team's bad weeks,
  with a trend over the years.
- Time in production and merge-to-release lead are lognormal, so the Detection Deficit runs
  from hours to weeks with a long tail; weekend detections mostly surface on Monday.
- Data problems as imports bring them: ~8 % without `merged_at`, ~0.5 % merged after they
  were detected (negative deficit), ~0.3 % detected before their release (not an escape).
- Categories, stages, severities and 5-15 components per team are skewed, each team its own
  way; recent escapes are more often unclassified.
- Retros of a team's month hold preventative actions for the more severe resolved escapes;
  an escape is sealed when its action is done, some actions stay open past their due date.

Rows are written with bulk_create in batches, bypassing escapes.services on purpose: the
services refuse exactly the data problems a realistic register contains. The same --seed
(and --end) gives the same data: every random draw comes from a generator seeded by --seed,
in a fixed order. At the end the dashboards' rollups are recomputed.

The modules, in the order `generate()` uses them:

- `plan.py`: the options checked into a `Plan`.
- `generate.py`: `generate()`, the steps, and the per-team run that drives the rest.
- `shapes.py`: each team's random shape (its skews, weekday, trend) and the split of escapes.
- `releases.py`: weekly releases, what their stages caught, and which weeks were bad.
- `draws.py`: one escape at a time, with its retro's action.
- `writers.py`: the teams, the facilitator, batches of rows, and the rollups.
- `progress.py`: the progress bar; `knobs.py`: the numbers.
"""
