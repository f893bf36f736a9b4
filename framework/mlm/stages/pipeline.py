"""Running stages make-style across a project's variants: run, plan (dry run), status.

`run("fit")` runs the data stage once, then each chosen variant's model and fit, skipping
what is fresh; `run("graphics")` also draws every stale figure and, with several variants,
compares them. `plan` answers what `run` would do, and why, without running anything.
"""

from __future__ import annotations

from mlm.errors import MlmError
from mlm.stages.base import Stage, StageStatus, parse_stage
from mlm.stages.compare import needs_two
from mlm.stages.fit import FitStage
from mlm.stages.graphics import settle_figures
from mlm.stages.parallel import fit_variants, runs_in_parallel
from mlm.stages.session import Session


def status(session: Session, models: list[str] | None = None) -> list[StageStatus]:
    """Each stage (per variant, and each figure): fresh, stale or missing, and why."""
    variants = session.layout.chosen(models)
    rows = [session.data().status()]
    for variant in variants:
        rows += [session.model(variant).status(), session.fit(variant).status()]
        rows += [figure.status() for figure in session.figures(variant)]
    if len(session.layout.variants()) > 1 and not models:
        rows.append(session.compare(variants).status())
    return rows


def _steps(
    session: Session, stage: str, force: bool, models: list[str] | None
) -> list[tuple[Stage, bool]]:
    """The stages `run(stage)` goes through in order, each with whether it is the target
    (which `force` reruns) or only an input (run only when stale)."""
    target, figure = parse_stage(stage)
    if target == "compare":
        variants = session.layout.variants()
        needs_two(variants)
        steps = [(session.data(), False)]
        steps += [(session.fit(v), False) for v in variants]
        return [*steps, (session.compare(variants), True)]
    variants = session.layout.chosen(models)
    steps: list[tuple[Stage, bool]] = [(session.data(), target == "data")]
    for variant in variants:
        if target == "model":
            steps.append((session.model(variant), True))
        elif target == "fit":
            steps.append((session.fit(variant), True))
        elif target == "graphics":
            figures = session.figures(variant, figure)
            # Sample only for figures that ask for the trace (redrawing a figure of the
            # data alone never samples): when one will be drawn, or the trace is not
            # fresh (a truncated trace is refitted even though its figures are drawn).
            traced = [f for f in figures if f.needs_trace]
            fit = session.fit(variant)
            if traced and (
                not fit.status().fresh or any(force or not f.status().fresh for f in traced)
            ):
                steps.append((fit, False))
            steps += [(f, True) for f in figures]
    if target == "graphics" and not models and len(variants) > 1:
        steps.append((session.compare(variants), False))
    return steps


def plan(
    session: Session, stage: str, force: bool = False, models: list[str] | None = None
) -> list[StageStatus]:
    """What `run(stage, force)` would run, with why; nothing is run or written."""
    rows = []
    for step, target in _steps(session, stage, force, models):
        row = step.status()
        if force and target:
            rows.append(StageStatus(row.stage, row.state, "forced", row.key, False, row.variant))
        elif not row.fresh:
            rows.append(row)
    return rows


def run(
    session: Session,
    stage: str,
    force: bool = False,
    models: list[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> list[StageStatus]:
    """Run `stage` and whatever stale stage it needs, make-style.

    `force` reruns the named stage (every figure, for graphics), not its inputs. One
    failing figure does not cost the others: all are drawn, then the failures reported.
    With `workers` (two or more local processes) or `scheduler` (a running Dask
    cluster's address), the stale fits run side by side on Dask after the data is
    loaded here; the rest runs here as without them.
    """
    results, failures = [], []
    figures_failed = 0
    settle_figures(session)
    steps = _steps(session, stage, force, models)
    fitted = _fit_side_by_side(session, steps, force, workers, scheduler, results)
    current = None
    for step, target in steps:
        if current is not None and step.variant != current:
            # Done with that variant's trace: a million rows' posterior predictive is a GB,
            # so hold one trace at a time (it is read again from the store if asked for).
            session.fit(current).release()
        current = step.variant
        if results and step is steps[0][0]:  # the data, loaded before the fits started
            continue
        if isinstance(step, FitStage) and step.variant in fitted:
            outcome = fitted[step.variant]
            if isinstance(outcome, StageStatus):
                results.append(outcome)
                continue
            if target or stage == "compare" or not step.use_kept_draws():
                raise _fit_failures(fitted)
            failures.append(str(outcome))
            continue
        if isinstance(step, FitStage) and not target:
            try:
                results.append(step.run())
            except MlmError as exc:
                # Draws kept from a fit that failed after sampling still serve the figures.
                if stage == "compare" or not step.use_kept_draws():
                    raise
                failures.append(str(exc))
            continue
        if step.label.startswith("graphics:"):
            try:
                results.append(step.run(force and target))
            except MlmError as exc:
                failures.append(str(exc))
                figures_failed += 1
                session.say(step.label, "failed", step.variant)
            continue
        if step.label == "compare" and failures:
            continue
        results.append(step.run(force and target))
    if failures:
        names = f"{figures_failed} figures failed:\n" if figures_failed > 1 else ""
        raise MlmError(names + "\n".join(failures))
    return results


def _fit_side_by_side(
    session: Session,
    steps: list[tuple[Stage, bool]],
    force: bool,
    workers: int | None,
    scheduler: str | None,
    results: list[StageStatus],
) -> dict[str, StageStatus | MlmError]:
    """Fit the stale variants of `steps` on Dask when asked to and worth it, after
    running the data stage here (its row added to `results`); each variant's status or
    error. Empty when they all run here, one after another."""
    if not workers and scheduler is None:
        return {}
    todo = [
        (step, force and target)
        for step, target in steps
        if isinstance(step, FitStage) and ((force and target) or not step.status().fresh)
    ]
    if not runs_in_parallel(workers, scheduler, len(todo)):
        return {}
    data, target = steps[0]
    results.append(data.run(force and target))
    return fit_variants(session, todo, workers, scheduler)


def _fit_failures(fitted: dict[str, StageStatus | MlmError]) -> MlmError:
    """One error naming every variant whose fit failed (each message names its file)."""
    failed = [str(outcome) for outcome in fitted.values() if isinstance(outcome, MlmError)]
    if len(failed) == 1:
        return MlmError(failed[0])
    return MlmError(f"{len(failed)} fits failed:\n" + "\n".join(failed))
