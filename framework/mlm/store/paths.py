"""Every path under `.mlm/`, in one place (as R targets keeps its store's paths in one file).

.mlm/data.json                          the last loaded data (record)
.mlm/model/<variant>.json               the last built model of a variant (record)
.mlm/fit/<variant>/<key>/trace.nc       a trace, by key (content-addressed run-cache)
.mlm/fit/<variant>/<key>/manifest.json  its record: inputs, diagnostics, checksum
.mlm/fit/<variant>/latest.json          which key was fitted last (to explain staleness)
.mlm/fit/<variant>/.tmp-<key>-*         a trace being written (renamed into place)
.mlm/fit/<variant>/.corrupt-<key>-*     a trace that failed its checksum, set aside
.mlm/graphics/<variant>/<figure>.json   the key each figure was last drawn with
.mlm/compare.json                       the LOO comparison of the variants (record)
.mlm/loo/<variant>/<key>.nc             pointwise LOO of a trace that holds no log-likelihood
.mlm/study/<variant>/<key>/point.json   a study's design point (what its key hashes)
.mlm/study/<variant>/<key>/<index>.json one replicate's summary
.mlm/predict/<variant>/<key>/draws.nc   cached predictions (or a comparison), by key
.mlm/predict/<variant>/<key>/manifest.json  their record: trace key, new data, kind, seed
.mlm/locks/<name>.lock                  one writer at a time per name
.mlm/generated.json                     what `mlm generate` wrote, for `mlm destroy`
"""

from __future__ import annotations

from pathlib import Path

CACHE_DIR = ".mlm"
TRACE_FILE = "trace.nc"
MANIFEST_FILE = "manifest.json"
STAGING_PREFIX = ".tmp-"
QUARANTINE_PREFIX = ".corrupt-"
INCOMPLETE_PREFIX = ".incomplete-"
DRAWS_FILE = "draws.nc"


class StorePaths:
    """Where each thing the store holds lives, for the project at `root`."""

    def __init__(self, root: Path):
        self.dir = Path(root) / CACHE_DIR

    @property
    def data_record(self) -> Path:
        return self.dir / "data.json"

    def model_record(self, variant: str) -> Path:
        return self.dir / "model" / f"{variant}.json"

    def figure_record(self, variant: str, name: str) -> Path:
        return self.dir / "graphics" / variant / f"{name}.json"

    @property
    def generated(self) -> Path:
        return self.dir / "generated.json"

    @property
    def compare_record(self) -> Path:
        return self.dir / "compare.json"

    def pointwise_loo(self, variant: str, key: str) -> Path:
        """Per row of the trace under `key`: elpd, p_loo and Pareto k (computed by compare)."""
        return self.dir / "loo" / variant / f"{key}.nc"

    @property
    def fits(self) -> Path:
        return self.dir / "fit"

    def fit_dir(self, variant: str) -> Path:
        return self.fits / variant

    def trace_dir(self, variant: str, key: str) -> Path:
        return self.fit_dir(variant) / key

    def incomplete_dir(self, variant: str, key: str) -> Path:
        """Where the posterior draws of a fit whose fit.py failed after sampling are kept."""
        return self.fit_dir(variant) / f"{INCOMPLETE_PREFIX}{key}"

    def trace_file(self, variant: str, key: str) -> Path:
        return self.trace_dir(variant, key) / TRACE_FILE

    def trace_manifest(self, variant: str, key: str) -> Path:
        return self.trace_dir(variant, key) / MANIFEST_FILE

    def latest(self, variant: str) -> Path:
        return self.fit_dir(variant) / "latest.json"

    def study_dir(self, variant: str) -> Path:
        return self.dir / "study" / variant

    def study_point(self, variant: str, key: str) -> Path:
        return self.study_dir(variant) / key / "point.json"

    def replicate(self, variant: str, key: str, index: int) -> Path:
        return self.study_dir(variant) / key / f"{index:05d}.json"

    def predictions_dir(self, variant: str) -> Path:
        return self.dir / "predict" / variant

    def prediction_draws(self, variant: str, key: str) -> Path:
        return self.predictions_dir(variant) / key / DRAWS_FILE

    def prediction_manifest(self, variant: str, key: str) -> Path:
        return self.predictions_dir(variant) / key / MANIFEST_FILE

    def lock(self, name: str) -> Path:
        return self.dir / "locks" / f"{name}.lock"
