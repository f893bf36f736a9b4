"""The compare stage: PSIS-LOO across a project's fitted model variants.

Its key hashes the variants' fit keys, so it reruns only when a trace changes. The
result is a record in the store (`.mlm/compare.json`) and a figure (`figures/compare.png`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlm.errors import MlmError
from mlm.stages.base import Stage, StageStatus, explain
from mlm.stages.graphics import save_figure
from mlm.store import Record

if TYPE_CHECKING:
    from mlm.stages.session import Session

PARETO_K_LIMIT = 0.7
COLUMNS = ("rank", "elpd", "se", "elpd_diff", "dse", "weight", "p")


def needs_two(variants: list[str]) -> None:
    """Refuse a comparison of fewer than two variants, before anything is fitted."""
    if len(variants) < 2:
        raise MlmError(
            "mlm run compare needs two or more model variants; add one with "
            "`mlm generate model NAME` (it copies model.py to models/NAME.py)"
        )


class CompareStage(Stage):
    """The LOO comparison of `variants`' current traces."""

    label = "compare"

    def __init__(self, session: Session, variants: list[str]):
        super().__init__()
        self.session = session
        self.variants = variants
        self.store = session.layout.store

    def inputs(self) -> dict:
        return self._once(
            "inputs", lambda: {f"{v} trace": self.session.fit(v).key() for v in self.variants}
        )

    def path(self) -> Path:
        config = self.session.layout.config
        return self.session.layout.figures_dir / f"compare.{config.figure_format}"

    def record(self) -> Record | None:
        return self.store.read(self.store.paths.compare_record)

    def status(self) -> StageStatus:
        """Fresh when the record was made from exactly the variants' current traces."""
        key = self.key()
        record = self.record()
        if record is None:
            return self.row("missing", "never compared", key)
        if record.key != key:
            return self.row("stale", explain(self.inputs(), record.inputs), key)
        if not self.path().is_file():
            return self.row("stale", "figure file missing", key)
        return self.row("fresh", f"{len(self.variants)} models", key)

    def run(self, force: bool = False) -> StageStatus:
        """Compare the variants' traces by PSIS-LOO; fits any variant whose trace is stale."""
        needs_two(self.variants)
        now = self.status()
        if now.fresh and not force:
            return now
        import arviz as az

        start = time.perf_counter()
        elpds = {variant: self._loo(variant) for variant in self.variants}
        table = az.compare(elpds, round_to="none")
        warnings = [w for name, elpd in elpds.items() if (w := _pareto_warning(name, elpd))]
        rows = {
            str(name): {c: _plain(row[c]) for c in COLUMNS if c in row}
            for name, row in table.iterrows()
        }
        import arviz_plots as azp

        config = self.session.layout.config
        save_figure(azp.plot_compare(table), self.path(), config.figure_dpi, "compare")
        order = [str(n) for n in table.index]
        details = {
            "table": rows,
            "order": order,
            "warnings": warnings,
            "wall_time_s": round(time.perf_counter() - start, 3),
        }
        self.store.write(
            self.store.paths.compare_record, Record(now.key, self.inputs(), details=details)
        )
        self.session.progress("compare", f"best expected log predictive density: {order[0]}")
        for warning in warnings:
            self.session.progress("compare", "warning: " + warning["message"])
        return self.row("fresh", f"{len(rows)} models", now.key, ran=True)

    def _loo(self, variant: str):
        """The PSIS-LOO (pointwise) of `variant`'s current trace, fitting it when stale.

        A trace with a log_likelihood group (a fit.py that calls pm.compute_log_likelihood)
        is used as it is. Otherwise the log-likelihood is computed here, a chunk of rows at
        a time, and only its per-row result is kept (in the store, by the trace's key):
        all of it would be draws x rows, 32 GB at a million rows.
        """
        import arviz as az

        from mlm import loo

        fit = self.session.fit(variant)
        key = fit.key()
        points = self.store.load_pointwise_loo(variant, key) if fit.complete() else None
        if points is None:
            idata = fit.value()
            if "log_likelihood" in idata.children:
                return az.loo(idata, pointwise=True)
            model = self.session.model(variant).value()
            self.session.say("compare", "computing the pointwise log-likelihood", variant)
            points = loo.pointwise(
                model,
                idata["posterior"].to_dataset(),
                say=lambda message: self.session.say("compare", message, variant),
            )
            key = fit.key()
            self.store.save_pointwise_loo(variant, key, points)
        fit.release()  # one trace in memory at a time
        return loo.elpd_data(points)

    def value(self) -> dict:
        """The last comparison (table, order, warnings), or an error saying how to make one."""
        record = self.record()
        if record is None:
            raise MlmError("no comparison yet; run `mlm run compare`")
        return record.to_json()


def _pareto_warning(name: str, elpd) -> dict | None:
    """Observations whose Pareto k exceeds the limit, with a message naming them."""
    khat = elpd.pareto_k
    bad = khat.where(khat > PARETO_K_LIMIT, drop=True)
    if not bad.size:
        return None
    dim = bad.dims[0] if bad.dims else None
    labels = [str(v) for v in bad[dim].to_numpy()] if dim else []
    return {
        "model": name,
        "observations": labels,
        "pareto_k": [round(float(v), 3) for v in bad.to_numpy().reshape(-1)],
        "message": (
            f"{name}: Pareto k > {PARETO_K_LIMIT} for {len(labels)} observation(s) "
            f"({dim} {', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''}); "
            "LOO is unreliable for them: consider K-fold CV or moment matching"
        ),
    }


def _plain(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if number != number else number  # NaN -> null in JSON
