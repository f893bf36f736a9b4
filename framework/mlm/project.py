"""`mlm.Project`: one analysis folder, with the same pipeline and cache as the CLI.

The facade the CLI and notebooks use. It holds no stage logic: it opens a `Session`
over the project's `Layout` for each call and asks the stages, the store or a study.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from mlm.errors import MlmError
from mlm.layout import DEFAULT_VARIANT, Layout
from mlm.stages import Progress, Session, StageStatus, pipeline
from mlm.stages.base import quiet


class Project:
    """An mlm project: the folder holding mlm.toml and the slot files.

    `Project(path)` finds the root by walking up from `path` to the nearest mlm.toml.
    Its properties give a notebook what the CLI gives a shell: `.data`, `.model`,
    `.idata` (from the cache when fresh), `.run(stage)` and `.status()`.

    A project holds one or more model variants: `model.py` (the variant named "model")
    and/or `models/NAME.py`. Each is built, fitted and cached on its own. `progress`,
    when given, is called as progress(stage, message) while stages run.
    """

    def __init__(self, path: str | Path = ".", progress: Progress | None = None):
        self.layout = Layout(path)
        self.progress = progress or quiet

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    # the folder and its settings (see Layout) ---------------------------------------------
    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def config(self):
        return self.layout.config

    @property
    def store(self):
        return self.layout.store

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def seed(self) -> int:
        return self.layout.seed

    @property
    def single_variant(self) -> bool:
        return self.layout.single_variant

    def variants(self) -> list[str]:
        """The model variants: "model" for model.py, then NAME for each models/NAME.py."""
        return self.layout.variants()

    def model_file(self, variant: str) -> str:
        return self.layout.model_file(variant)

    def session(self, wait: bool = True) -> Session:
        """A fresh pass over the stages (sees every edit made since the last)."""
        return Session(self.layout, self.progress, wait, predictor=_figure_predict)

    def _variant(self, variant: str | None) -> str:
        return self.layout.chosen([variant])[0] if variant else self.variants()[0]

    # results ------------------------------------------------------------------------------
    @property
    def data(self):
        """The DataFrame that data.py's load() returns."""
        return self.session().data().value()

    @property
    def model(self):
        """The pymc.Model of the first variant (model.py when there is one)."""
        return self.model_of(None)

    @property
    def idata(self):
        """The first variant's trace: from the cache when fresh, else sampled (and cached)."""
        return self.idata_of(None)

    def model_of(self, variant: str | None):
        """The pymc.Model of a variant."""
        return self.session().model(self._variant(variant)).value()

    def idata_of(self, variant: str | None):
        """A variant's trace: from the cache when fresh, else sampled (and cached) now."""
        session = self.session()
        session.data().run()
        return session.fit(self._variant(variant)).value()

    def fit_key(self, variant: str | None = None) -> str:
        """The key a variant's trace is (or would be) stored under, given today's inputs."""
        return self.session().fit(self._variant(variant)).key()

    def figures(self, variant: str | None = None) -> dict[str, Path]:
        """Each figure function's name and the file it draws, for a variant."""
        session = self.session()
        return {f.figure.name: f.path() for f in session.figures(self._variant(variant))}

    # running ------------------------------------------------------------------------------
    def run(
        self,
        stage: str = "graphics",
        force: bool = False,
        models: list[str] | None = None,
        wait: bool = True,
        workers: int | None = None,
        scheduler: str | None = None,
    ) -> list[StageStatus]:
        """Run a stage and whatever stale stage it needs; returns what each step did.

        With several variants, `run()` (graphics, the default) also compares them.
        `models` limits the run to those variants. `wait=False` fails at once when
        another mlm process is fitting the same model, instead of waiting for it.

        Stale fits of several variants run side by side with `workers=N` (N >= 2 local
        Dask worker processes) or `scheduler="tcp://host:8786"` (a running Dask cluster
        that sees the project folder at the same path); by default, one after another
        in this process. The cache, locks and messages are the same either way.
        """
        if workers is not None and scheduler is not None:
            raise MlmError(
                "workers and scheduler exclude each other: workers starts local processes, "
                "scheduler uses a running Dask cluster's"
            )
        if workers is not None and workers < 0:
            raise MlmError(f"workers must be 0 or more, not {workers}")
        return pipeline.run(self.session(wait), stage, force, models, workers, scheduler)

    def plan(
        self, stage: str = "graphics", force: bool = False, models: list[str] | None = None
    ) -> list[StageStatus]:
        """What `run(stage)` would run, and why, without running anything."""
        return pipeline.plan(self.session(), stage, force, models)

    def status(self, models: list[str] | None = None) -> list[StageStatus]:
        """Each stage (per variant, and each figure): fresh, stale or missing, and why."""
        return pipeline.status(self.session(), models)

    # reading the store --------------------------------------------------------------------
    def summary(
        self,
        variant: str | None = None,
        var_names: list[str] | tuple[str, ...] | None = None,
        show_all: bool = False,
        prob: float = 0.95,
    ):
        """The posterior summary of a variant's cached trace, its record, and its freshness.

        As lme4's summary: the population-level effects, the group-level SDs and
        correlations, the residual and family parameters, with `prob` equal-tailed
        intervals (columns `eti95_lb`, `eti95_ub`). `var_names` picks variables by name
        (each must exist); without it the group effects (`u_*`) and auxiliaries (`z_*`,
        `Intercept_centred`, ...) are left out unless `show_all`, as are a correlation
        matrix's constant diagonal and mirror cells: `table.attrs["hidden"]` names them.
        `mlm.summary` decides (its docstring has the rules).
        """
        from mlm.summary import summary_of

        variant = self._variant(variant)
        fit = self.session().fit(variant)
        key = fit.key()
        fresh = self.store.has_trace(variant, key)
        if not fresh:
            key = self.store.latest_key(variant)
            if key is None or not self.store.has_trace(variant, key):
                raise MlmError(
                    f"{self.model_file(variant)}: no usable trace to summarize "
                    f"({fit.status().reason}); run `mlm run fit` first"
                )
        idata = self.store.load_trace(variant, key)
        record = self.store.trace_record(variant, key)
        names = list(idata["posterior"].data_vars)
        if var_names:
            unknown = [n for n in var_names if n not in names]
            if unknown:
                import difflib

                close = difflib.get_close_matches(unknown[0], names, n=1)
                raise MlmError(
                    f"--var {unknown[0]}: the trace has no variable {unknown[0]!r}"
                    + (f" (did you mean {close[0]}?)" if close else "")
                    + f"; it has: {', '.join(names)}"
                )
        return summary_of(idata, var_names, show_all, prob), record, fresh

    def failing_checks(self, variant: str, key: str) -> list[str]:
        """The checks of `mlm check` that the trace `key` of `variant` fails, from the
        numbers its manifest recorded when it was written (nothing is loaded: a hint for
        `mlm run`, not the gate)."""
        from mlm.check import evaluate, thresholds

        record = self.store.trace_record(variant, key)
        numbers = record.get("diagnostics") if record else None
        if not numbers:
            return []
        limits = thresholds(self.config.raw, str(self.root / "mlm.toml"))
        return [c.name for c in evaluate(variant, numbers, limits) if not c.passed]

    def check(self, models: list[str] | None = None):
        """Each variant's diagnostics against the thresholds in mlm.toml ([check])."""
        from mlm.check import evaluate, explain, measure, thresholds

        limits = thresholds(self.config.raw, str(self.root / "mlm.toml"))
        session = self.session()
        rows = []
        for variant in self.layout.chosen(models):
            fit = session.fit(variant)
            key = fit.key()
            if not self.store.has_trace(variant, key):
                raise MlmError(
                    f"{self.model_file(variant)}: no fresh trace to check "
                    f"({fit.status().reason}); run `mlm run fit` first"
                )
            # The manifest's numbers count only for a trace whose bytes are still its own.
            self.store.verify_trace(variant, key)
            record = self.store.trace_record(variant, key)
            numbers = record.get("diagnostics") if record else None
            if not numbers or "max_r_hat_at" not in numbers:
                numbers = measure(self.store.load_trace(variant, key))
            checks = evaluate(variant, numbers, limits)
            if not all(c.passed for c in checks):
                # Say why from the trace, naming the lines of model.py and fit.py to change.
                model_file = self.model_file(variant)
                idata = self.store.load_trace(variant, key)
                checks = explain(
                    checks, idata, self.root / model_file, self.root / "fit.py", limits, model_file
                )
            rows += checks
        return rows

    def report(self, output: Path | None = None) -> Path:
        """Bring every stage up to date, then write report.html (or `output`); its path."""
        from mlm.report import write_report

        self.run()
        checks = self.check()
        return write_report(self.session(), checks, (output or self.root / "report.html").resolve())

    def comparison(self) -> dict:
        """The cached LOO comparison of the variants (run `run("compare")` first)."""
        return self.session().compare(self.variants()).value()

    # predictions ----------------------------------------------------------------------------
    def predict(
        self,
        newdata,
        variant: str | None = None,
        kind: str = "response",
        *,
        seed: int | None = None,
        new_levels: str = "gaussian",
        observed: str | None = None,
    ):
        """Posterior draws (chain, draw, row) for the rows of `newdata`, from the cached trace.

        newdata: a DataFrame, or the path of a CSV, TSV or Parquet file; it needs every
        predictor column (the outcome may be left out). kind="response" draws new
        observations (brms' posterior_predict), kind="mean" the expected outcome
        (posterior_epred). Levels of a group effect the fit never saw get effects drawn
        from the fitted population (new_levels="gaussian", brms' sample_new_levels), or
        borrowed from a fitted level at random ("uncertainty"). The trace is fitted first
        only when it is stale; the draws are cached under .mlm/predict/, so an identical
        call reads them back. `seed` defaults to the project's; the new rows' columns are
        coordinates along `row`. `mlm.predict.summary(draws)` makes the table.
        """
        return self.predictions(
            newdata, variant, kind, seed=seed, new_levels=new_levels, observed=observed
        ).draws

    def predictions(
        self,
        newdata,
        variant: str | None = None,
        kind: str = "response",
        *,
        seed: int | None = None,
        new_levels: str = "gaussian",
        observed: str | None = None,
    ):
        """As predict(), with the cache's view: .draws, .table(prob), .key, .path, .cached."""
        from mlm.predict.cache import Request, cached, rows_of

        rows = rows_of(newdata, root=self.root)
        request = Request(kind=kind, seed=seed, new_levels=new_levels, observed=observed)
        return cached(self.session(), self._variant(variant), rows, request)

    def compare_predictions(
        self,
        variable: str,
        values=(0, 1),
        newdata=None,
        variant: str | None = None,
        by: str | None = None,
        *,
        seed: int | None = None,
        new_levels: str = "gaussian",
        observed: str | None = None,
    ):
        """The average difference in the expected outcome between variable=values[1] and
        variable=values[0] over the data's rows (or newdata's), as marginaleffects'
        avg_comparisons: draws (chain, draw), or (chain, draw, by) within each value of
        the column `by`. From the cached trace, and cached itself; `.table()` of the
        result of comparison() gives mean, sd and the 95% interval."""
        return self.comparison_of(
            variable,
            values,
            newdata,
            variant,
            by,
            seed=seed,
            new_levels=new_levels,
            observed=observed,
        ).draws

    def comparison_of(
        self,
        variable: str,
        values=(0, 1),
        newdata=None,
        variant: str | None = None,
        by: str | None = None,
        *,
        seed: int | None = None,
        new_levels: str = "gaussian",
        observed: str | None = None,
    ):
        """As compare_predictions(), with the cache's view (.draws, .table(), .cached)."""
        from mlm.predict.cache import cached, comparison_request, rows_of

        session = self.session()
        rows = rows_of(newdata, root=self.root) if newdata is not None else None
        request = comparison_request(
            session,
            variable,
            values,
            rows,
            by,
            seed=seed,
            new_levels=new_levels,
            observed=observed,
        )
        return cached(session, self._variant(variant), rows, request)

    # changing the project -----------------------------------------------------------------
    def new_variant(self, name: str, source: str | None = None) -> Path:
        """Copy a variant's file to models/NAME.py, to edit into a new variant."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == DEFAULT_VARIANT:
            raise MlmError(
                f"{name!r} cannot name a model variant: use letters, digits and '_' (a Python "
                f"module name), and not {DEFAULT_VARIANT!r}"
            )
        origin = self.root / self.model_file(self._variant(source))
        target = self.root / "models" / f"{name}.py"
        if target.exists():
            raise MlmError(f"{target.relative_to(self.root)} exists; mlm never overwrites it")
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(origin, target)
        return target

    def clean(self, keep: int | None = None) -> int:
        """Drop the cache (or all but `keep` traces per variant); returns traces removed."""
        if keep is None:
            return self.store.clean()
        session = self.session()
        current = {v: session.fit(v).key() for v in self.variants()}
        return self.store.clean(keep, current=current)

    def study(
        self,
        replicates: int,
        truth: dict | None = None,
        grid: dict | None = None,
        workers: int | None = None,
        scheduler: str | None = None,
        model: str | None = None,
        figures: bool = True,
        **settings,
    ):
        """A simulation study of the design: power, bias, RMSE, coverage and SBC ranks.

        Fits `replicates` datasets per grid point (data.simulate(rng, **truth, **design),
        or the prior predictive when `truth` is empty) on Dask (`workers=0`: in-process),
        reusing every replicate already cached. Settings come from mlm.toml [study] and
        the keyword arguments (draws, tune, chains, interval).
        """
        from mlm.study import StudyResult, run_study, study_for

        variant = self._variant(model)
        study = study_for(self.layout, variant, truth or {}, grid or {}, settings)
        records = run_study(
            study, replicates, workers, scheduler, lambda m: self.progress("study", m)
        )
        return StudyResult.of(self.layout, study, records, figures)


def _figure_predict(session: Session, variant: str):
    """The `predict` a figure asks for (mlm.predict is imported only when one does)."""
    from mlm.predict.cache import figure_predict

    return figure_predict(session, variant)
