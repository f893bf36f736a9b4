"""The compare stage: PSIS-LOO across a project's fitted model variants.

Its key hashes the variants' fit keys, so it reruns only when a trace changes. The
result is a plain JSON record (`.mlm/compare.json`) and a figure (`figures/compare.png`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mlm.cache import atomic_write_json, read_json
from mlm.errors import MlmError
from mlm.fingerprint import digest
from mlm.stages import StageStatus, _now, _save_figure, explain

if TYPE_CHECKING:
    from mlm.project import Project
    from mlm.stages import Pipeline

PARETO_K_LIMIT = 0.7
COLUMNS = ("rank", "elpd", "se", "elpd_diff", "dse", "weight", "p")


def inputs(pipelines: list[Pipeline]) -> dict:
    return {f"{p.variant} trace": p.fit_key() for p in pipelines}


def figure_path(project: Project):
    return project.figures_dir / f"compare.{project.config.figure_format}"


def record_path(project: Project):
    return project.store.dir / "compare.json"


def status(project: Project, pipelines: list[Pipeline]) -> StageStatus:
    """Fresh when the record was made from exactly the variants' current traces."""
    current = inputs(pipelines)
    key = digest(current)
    record = read_json(record_path(project))
    if record is None:
        return StageStatus("compare", "missing", "never compared", key)
    if record.get("key") != key:
        return StageStatus("compare", "stale", explain(current, record.get("inputs")), key)
    if not figure_path(project).is_file():
        return StageStatus("compare", "stale", "figure file missing", key)
    return StageStatus("compare", "fresh", f"{len(current)} models", key)


def run(project: Project, pipelines: list[Pipeline], force: bool = False) -> StageStatus:
    """Compare the variants' traces by PSIS-LOO; fits any variant whose trace is stale."""
    if len(pipelines) < 2:
        raise MlmError(
            "mlm run compare needs two or more model variants; add one with "
            "`mlm generate model NAME` (it copies model.py to models/NAME.py)"
        )
    now = status(project, pipelines)
    if now.fresh and not force:
        return now
    import arviz as az

    traces = {}
    for pipeline in pipelines:
        idata = pipeline.idata()
        if "log_likelihood" not in idata.children:
            raise MlmError(
                f"{pipeline.model_file}: its trace has no log_likelihood group, which LOO "
                "needs; add `pm.compute_log_likelihood(idata)` after pm.sample in fit.py"
            )
        traces[pipeline.variant] = idata
    start = time.perf_counter()
    table = az.compare(traces, round_to="none")
    warnings = []
    for name, idata in traces.items():
        loo = az.loo(idata, pointwise=True)
        khat = loo.pareto_k
        bad = khat.where(khat > PARETO_K_LIMIT, drop=True)
        if bad.size:
            dim = bad.dims[0] if bad.dims else None
            labels = [str(v) for v in bad[dim].to_numpy()] if dim else []
            warnings.append(
                {
                    "model": name,
                    "observations": labels,
                    "pareto_k": [round(float(v), 3) for v in bad.to_numpy().reshape(-1)],
                    "message": (
                        f"{name}: Pareto k > {PARETO_K_LIMIT} for {len(labels)} observation(s) "
                        f"({dim} {', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''}); "
                        "LOO is unreliable for them: consider K-fold CV or moment matching"
                    ),
                }
            )
    rows = {
        str(name): {c: _plain(row[c]) for c in COLUMNS if c in row}
        for name, row in table.iterrows()
    }
    import arviz_plots as azp

    plot = azp.plot_compare(table)
    _save_figure(plot, figure_path(project), project.config.figure_dpi, "compare")
    record = {
        "key": now.key,
        "inputs": inputs(pipelines),
        "table": rows,
        "order": [str(n) for n in table.index],
        "warnings": warnings,
        "created_at": _now(),
        "wall_time_s": round(time.perf_counter() - start, 3),
    }
    atomic_write_json(record_path(project), record)
    best = record["order"][0]
    if project.report:
        project.report("compare", f"best expected log predictive density: {best}")
        for warning in warnings:
            project.report("compare", "warning: " + warning["message"])
    return StageStatus("compare", "fresh", f"{len(rows)} models", now.key, True)


def cached(project: Project) -> dict:
    """The last comparison record, or an error saying how to make one."""
    record = read_json(record_path(project))
    if record is None:
        raise MlmError("no comparison yet; run `mlm run compare`")
    return record


def _plain(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if number != number else number  # NaN -> null in JSON
