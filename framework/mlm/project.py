"""`mlm.Project`: one analysis folder, with the same pipeline and cache as the CLI."""

from __future__ import annotations

from pathlib import Path

from mlm import compare
from mlm.cache import Store
from mlm.config import find_root, read_config
from mlm.errors import MlmError
from mlm.stages import Pipeline, Report, StageStatus

DEFAULT_VARIANT = "model"


class Project:
    """An mlm project: the folder holding mlm.toml and the slot files.

    `Project(path)` finds the root by walking up from `path` to the nearest mlm.toml.
    Its properties give a notebook what the CLI gives a shell: `.data`, `.model`,
    `.idata` (from the cache when fresh), `.run(stage)` and `.status()`. It is also
    what a slot function receives when it asks for a parameter named `project`.

    A project holds one or more model variants: `model.py` (the variant named "model")
    and/or `models/NAME.py`. Each is built, fitted and cached on its own.
    """

    def __init__(self, path: str | Path = ".", report: Report | None = None):
        self.root = find_root(Path(path))
        self.config = read_config(self.root)
        self.store = Store(self.root)
        self.report = report
        # Whether a run waits for another mlm process fitting the same model (else fails).
        self.wait = True

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"

    # settings a slot function may use ---------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def seed(self) -> int:
        """The random seed from mlm.toml; fit.py passes it to pm.sample."""
        return self.config.seed

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    def path(self, *parts: str) -> Path:
        """A path inside the project: `project.path("data", "trial.csv")`."""
        return self.root.joinpath(*parts)

    # model variants ---------------------------------------------------------------------
    def variants(self) -> list[str]:
        """The model variants: "model" for model.py, then NAME for each models/NAME.py."""
        names = [DEFAULT_VARIANT] if (self.root / "model.py").is_file() else []
        folder = self.root / "models"
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if path.name.startswith("_"):
                    continue
                if path.stem == DEFAULT_VARIANT:
                    raise MlmError(
                        "models/model.py clashes with the variant named 'model' (model.py); "
                        "rename it"
                    )
                names.append(path.stem)
        if not names:
            raise MlmError(
                f"model.py not found in {self.root} (nor any models/NAME.py); mlm expects it "
                "to define build(data) -> pymc.Model"
            )
        return names

    @property
    def single_variant(self) -> bool:
        """True when the project has one model (figures then go straight to figures/)."""
        return len(self.variants()) == 1

    def model_file(self, variant: str) -> str:
        """The file that defines `variant`, relative to the root."""
        return "model.py" if variant == DEFAULT_VARIANT else f"models/{variant}.py"

    def _chosen(self, models: list[str] | None) -> list[str]:
        known = self.variants()
        if not models:
            return known
        unknown = [m for m in models if m not in known]
        if unknown:
            raise MlmError(
                f"no model variant named {', '.join(unknown)}; this project has: {', '.join(known)}"
            )
        return [m for m in known if m in models]

    # the pipeline -----------------------------------------------------------------------
    def pipeline(self, variant: str | None = None) -> Pipeline:
        """A fresh pass over one variant's stages (sees every edit made since the last)."""
        return Pipeline(self, self.report, variant or self.variants()[0])

    def pipelines(self, models: list[str] | None = None) -> list[Pipeline]:
        """One fresh pipeline per chosen variant, sharing the data and loaded modules."""
        shared: dict = {}
        return [Pipeline(self, self.report, v, shared) for v in self._chosen(models)]

    @property
    def data(self):
        """The DataFrame that data.py's load() returns."""
        return self.pipeline().data()

    @property
    def model(self):
        """The pymc.Model of the first variant (model.py when there is one)."""
        return self.pipeline().model()

    @property
    def idata(self):
        """The first variant's trace: from the cache when fresh, else sampled (and cached)."""
        return self.idata_of(None)

    def model_of(self, variant: str | None):
        """The pymc.Model of a variant."""
        return self.pipeline(variant).model()

    def idata_of(self, variant: str | None):
        """A variant's trace: from the cache when fresh, else sampled (and cached) now."""
        pipeline = self.pipeline(variant)
        pipeline.run_data()
        return pipeline.idata()

    def run(
        self, stage: str = "graphics", force: bool = False, models: list[str] | None = None
    ) -> list[StageStatus]:
        """Run a stage and whatever stale stage it needs; returns what each step did.

        With several variants, `run()` (graphics, the default) also compares them.
        `models` limits the run to those variants.
        """
        if stage == "compare":
            pipelines = self.pipelines()
            results = [pipelines[0].run_data()]
            results += [p.run_fit() for p in pipelines]
            return [*results, compare.run(self, pipelines, force)]
        pipelines = self.pipelines(models)
        results = [pipelines[0].run_data(force and stage == "data")]
        for pipeline in pipelines:
            results += pipeline.run(stage, force, with_data=False)
        if stage == "graphics" and not models and len(pipelines) > 1:
            results.append(compare.run(self, pipelines, False))
        return results

    def plan(
        self, stage: str = "graphics", force: bool = False, models: list[str] | None = None
    ) -> list[StageStatus]:
        """What `run(stage)` would run, and why, without running anything."""
        if stage == "compare":
            pipelines = self.pipelines()
            rows = pipelines[0].plan("data")
            for pipeline in pipelines:
                rows += pipeline.plan("fit", with_data=False)
            status = compare.status(self, pipelines)
            return rows + ([status] if force or not status.fresh else [])
        pipelines = self.pipelines(models)
        rows = pipelines[0].plan("data", force and stage == "data")
        for pipeline in pipelines:
            rows += pipeline.plan(stage, force, with_data=False)
        if stage == "graphics" and not models and len(pipelines) > 1:
            status = compare.status(self, pipelines)
            rows += [] if status.fresh else [status]
        return rows

    def status(self, models: list[str] | None = None) -> list[StageStatus]:
        """Each stage (per variant, and each figure): fresh, stale or missing, and why."""
        pipelines = self.pipelines(models)
        rows = [pipelines[0].data_status()]
        for pipeline in pipelines:
            rows += pipeline.status(with_data=False)
        if len(self.variants()) > 1 and not models:
            rows.append(compare.status(self, pipelines))
        return rows

    def summary(self, variant: str | None = None):
        """The ArviZ summary of a variant's cached trace, its manifest, and its freshness."""
        import arviz as az

        pipeline = self.pipeline(variant)
        key = pipeline.fit_key()
        fresh = self.store.has_trace(pipeline.variant, key)
        if not fresh:
            key = self.store.latest_key(pipeline.variant)
            if key is None or not self.store.has_trace(pipeline.variant, key):
                raise MlmError(
                    f"no cached trace of {pipeline.variant} yet; run `mlm run fit` first"
                )
        idata = self.store.load_trace(pipeline.variant, key)
        manifest = self.store.trace_manifest(pipeline.variant, key) or {}
        return az.summary(idata, round_to="none"), manifest, fresh

    def new_variant(self, name: str, source: str | None = None) -> Path:
        """Copy a variant's file to models/NAME.py, to edit into a new variant."""
        import re
        import shutil

        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == DEFAULT_VARIANT:
            raise MlmError(
                f"{name!r} cannot name a model variant: use letters, digits and '_' (a Python "
                f"module name), and not {DEFAULT_VARIANT!r}"
            )
        source = source or self.variants()[0]
        origin = self.root / self.model_file(self._chosen([source])[0])
        target = self.root / "models" / f"{name}.py"
        if target.exists():
            raise MlmError(f"{target.relative_to(self.root)} exists; mlm never overwrites it")
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(origin, target)
        return target

    def check(self, models: list[str] | None = None):
        """Each variant's diagnostics against the thresholds in mlm.toml ([check])."""
        from mlm.check import evaluate, measure, thresholds

        limits = thresholds(self.config.raw, str(self.root / "mlm.toml"))
        rows = []
        for pipeline in self.pipelines(models):
            key = pipeline.fit_key()
            if not self.store.has_trace(pipeline.variant, key):
                reason = pipeline.fit_status().reason
                raise MlmError(
                    f"{pipeline.model_file}: no fresh trace to check ({reason}); "
                    "run `mlm run fit` first"
                )
            numbers = (self.store.trace_manifest(pipeline.variant, key) or {}).get("diagnostics")
            if not numbers or "max_r_hat_at" not in numbers:
                numbers = measure(self.store.load_trace(pipeline.variant, key))
            rows += evaluate(pipeline.variant, numbers, limits)
        return rows

    def comparison(self) -> dict:
        """The cached LOO comparison of the variants (run `run("compare")` first)."""
        return compare.cached(self)

    def clean(self, keep: int | None = None) -> int:
        """Drop the cache (or all but `keep` traces per variant); returns traces removed."""
        if keep is None:
            return self.store.clean()
        current = {p.variant: p.fit_key() for p in self.pipelines()}
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

        variant = self._chosen([model] if model else None)[0]
        study = study_for(self, self.model_file(variant), truth or {}, grid or {}, settings)
        report = (lambda message: self.report("study", message)) if self.report else None
        records = run_study(study, variant, replicates, workers, scheduler, report)
        return StudyResult.of(self, study, variant, records, figures)
