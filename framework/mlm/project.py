"""`mlm.Project`: one analysis folder, with the same pipeline and cache as the CLI."""

from __future__ import annotations

from pathlib import Path

from mlm.cache import Store
from mlm.config import find_root, read_config
from mlm.errors import MlmError
from mlm.stages import Pipeline, Report, StageStatus


class Project:
    """An mlm project: the folder holding mlm.toml and the four slot files.

    `Project(path)` finds the root by walking up from `path` to the nearest mlm.toml.
    Its properties give a notebook what the CLI gives a shell: `.data`, `.model`,
    `.idata` (from the cache when fresh), `.run(stage)` and `.status()`. It is also
    what a slot function receives when it asks for a parameter named `project`.
    """

    def __init__(self, path: str | Path = ".", report: Report | None = None):
        self.root = find_root(Path(path))
        self.config = read_config(self.root)
        self.store = Store(self.root)
        self.report = report

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

    # the pipeline -----------------------------------------------------------------------
    def pipeline(self) -> Pipeline:
        """A fresh pass over the stages (sees every edit made since the last one)."""
        return Pipeline(self, self.report)

    @property
    def data(self):
        """The DataFrame that data.py's load() returns."""
        return self.pipeline().data()

    @property
    def model(self):
        """The pymc.Model that model.py's build() returns."""
        return self.pipeline().model()

    @property
    def idata(self):
        """The trace: from the cache when it is fresh, otherwise sampled (and cached) now."""
        pipeline = self.pipeline()
        pipeline.run_data()
        return pipeline.idata()

    def run(self, stage: str = "graphics", force: bool = False) -> list[StageStatus]:
        """Run a stage and whatever stale stage it needs; returns what each step did."""
        return self.pipeline().run(stage, force=force)

    def plan(self, stage: str = "graphics", force: bool = False) -> list[StageStatus]:
        """What `run(stage)` would run, and why, without running anything."""
        return self.pipeline().plan(stage, force=force)

    def status(self) -> list[StageStatus]:
        """Each stage (and each figure): fresh, stale or missing, and the reason."""
        return self.pipeline().status()

    def summary(self, stale_ok: bool = True):
        """The ArviZ summary of the cached trace, and whether that trace is fresh."""
        import arviz as az

        pipeline = self.pipeline()
        key = pipeline.fit_key()
        fresh = self.store.has_trace(pipeline.variant, key)
        if not fresh:
            key = self.store.latest_key(pipeline.variant)
            if key is None or not self.store.has_trace(pipeline.variant, key) or not stale_ok:
                raise MlmError("no cached trace yet; run `mlm run fit` first")
        idata = self.store.load_trace(pipeline.variant, key)
        manifest = self.store.trace_manifest(pipeline.variant, key) or {}
        return az.summary(idata, round_to="none"), manifest, fresh

    def clean(self, keep: int | None = None) -> int:
        """Drop the cache (or all but the newest `keep` traces); returns traces removed."""
        if keep is None:
            return self.store.clean()
        pipeline = self.pipeline()
        return self.store.clean(keep, current={pipeline.variant: pipeline.fit_key()})
