"""Simulation studies: many fits of simulated data, for power and calibration of a design.

A study draws datasets with the project's `data.simulate(rng, **truth)` (or, with no truth,
from the model's prior predictive: simulation-based calibration), fits each with the
project's model, and keeps one small JSON summary per replicate (posterior means, interval
endpoints, SBC ranks, diagnostics, seeds) under `.mlm/study/`; the traces are dropped.

Fits run on Dask: a LocalCluster by default, an existing cluster given its scheduler
address, or in-process with `workers=0`. Each worker imports the project by file path and
compiles the model once per design, reusing the compiled model for every replicate whose
model differs only in its data (nutpie's `with_data` on the observed values and pm.Data).

A replicate's file is keyed by the model and data code, the truth, the design, the
sampling settings, the project seed and library versions, and named by its index; a rerun
computes only the replicates missing from the cache.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlm.cache import CACHE_DIR, atomic_write_json, read_json
from mlm.compiled import persistent
from mlm.errors import MlmError
from mlm.fingerprint import code_fingerprints, digest
from mlm.slots import SlotLoader

LIBRARIES = ("pymc", "pytensor", "nutpie", "numpy")
DEFAULTS = {
    "draws": 500,
    "tune": 500,
    "chains": 2,
    "interval": 0.9,
    "max_size": 20,
    "sbc_draws": 99,
}
OBSERVED_PREFIX = "mlm_observed_"


@dataclass(frozen=True)
class Study:
    """What to simulate and how to fit it; the same object on the client and the workers."""

    root: str
    model_file: str = "model.py"
    truth: dict = field(default_factory=dict)  # simulate()'s arguments
    grid: dict = field(default_factory=dict)  # design argument -> list of values
    settings: dict = field(default_factory=lambda: dict(DEFAULTS))
    seed: int = 0
    compile_cache: bool = True  # mlm.toml [fit] compile_cache; results do not depend on it

    @property
    def sbc(self) -> bool:
        """Simulation-based calibration (from the prior) when neither truth nor grid is given."""
        return not self.truth and not self.grid

    def designs(self) -> list[dict]:
        """Every point of the grid (one empty design without a grid)."""
        keys = list(self.grid)
        points = itertools.product(*self.grid.values())
        return [dict(zip(keys, values, strict=True)) for values in points]

    def inputs(self) -> dict:
        """What every replicate's result depends on, besides its design and index."""
        from mlm.stages import library_versions

        root = Path(self.root)
        code = code_fingerprints(root / self.model_file, root)
        if (root / "data.py").is_file():
            code.update(code_fingerprints(root / "data.py", root))
        return {
            "code": code,
            "truth": self.truth,
            "settings": self.settings,
            "seed": self.seed,
            "mode": "sbc" if self.sbc else "truth",
            **library_versions(LIBRARIES),
        }

    def point_key(self, design: dict, inputs: dict | None = None) -> str:
        return digest(inputs or self.inputs(), design)


def study_dir(root: Path, variant: str) -> Path:
    return Path(root) / CACHE_DIR / "study" / variant


def replicate_path(root: Path, variant: str, key: str, index: int) -> Path:
    return study_dir(root, variant) / key / f"{index:05d}.json"


# ---------------------------------------------------------------------------------------
# the client: which replicates are missing, where they run, where they are stored


def run_study(
    study: Study,
    variant: str,
    replicates: int,
    workers: int | None = None,
    scheduler: str | None = None,
    report: Callable[[str], None] | None = None,
) -> list[dict]:
    """Compute every missing replicate of every design point; returns all their records.

    `workers=0` runs in this process; otherwise a Dask LocalCluster of `workers` processes
    (default: one per core) is started, or the cluster at `scheduler` is used. Each result
    is written to the cache as soon as it arrives, so an interrupted study resumes.
    """
    root = Path(study.root)
    inputs = study.inputs()
    tasks, records = [], []
    for design in study.designs():
        key = study.point_key(design, inputs)
        atomic_write_json(
            study_dir(root, variant) / key / "point.json", {"key": key, "design": design, **inputs}
        )
        for index in range(replicates):
            record = read_json(replicate_path(root, variant, key, index))
            if record is None:
                tasks.append((design, key, index))
            else:
                records.append(record)
    say = report or (lambda message: None)
    say(f"{len(records)} replicate(s) cached, {len(tasks)} to compute")
    if tasks:
        store = _storer(root, variant, records, say, len(tasks))
        if workers == 0 and scheduler is None:
            for design, key, index in tasks:
                store(key, fit_replicate(study, design, index))
        else:
            _run_on_dask(study, tasks, workers, scheduler, store)
    order = {
        (digest(d), i): n
        for n, (d, i) in enumerate((d, i) for d in study.designs() for i in range(replicates))
    }
    return sorted(records, key=lambda r: order.get((digest(r["design"]), r["index"]), 0))


def _storer(root: Path, variant: str, records: list, say, total: int):
    lock = threading.Lock()

    def store(key: str, record: dict) -> None:
        with lock:
            atomic_write_json(replicate_path(root, variant, key, record["index"]), record)
            records.append(record)
            record["computed"] = True
            design = " ".join(f"{k}={v}" for k, v in record["design"].items())
            say(
                f"replicate {record['index']} {design} done "
                f"({sum(r.get('computed', False) for r in records)}/{total})"
            )

    return store


def _run_on_dask(
    study: Study, tasks: list, workers: int | None, scheduler: str | None, store
) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise MlmError(
            "simulation studies run on Dask: install it with `pip install 'mlm[dask]'` "
            "(or run in this process with --workers 0)"
        ) from None
    cluster = None
    if scheduler is None:
        import os

        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError, TypeError) as exc:
            raise MlmError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({type(exc).__name__}: "
                f"{exc}); start one with `dask scheduler` and `dask worker ADDRESS`, or drop "
                "--scheduler to run on a local cluster"
            ) from None
    try:
        futures = {
            client.submit(
                fit_replicate, study, design, index, pure=False, key=f"mlm-{key}-{index}"
            ): key
            for design, key, index in tasks
        }
        for future in as_completed(futures):
            store(futures[future], future.result())
        if cluster is not None:
            # Our own workers are about to exit: with the GC frozen they skip the second
            # of final garbage collection that a process which imported PyMC pays.
            client.run(gc.freeze)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------
# the worker: one replicate, with the compiled model kept between replicates

_LOADERS: dict[str, SlotLoader] = {}
_COMPILED: dict[tuple, list] = {}  # (root, model file, design key) -> [(ModelShape, compiled)]
_WORKER_LOCK = threading.Lock()
KEEP_COMPILED = 4  # compiled models per design point (builds that differ in structure)
KEEP_DESIGNS = 8  # design points with compiled models kept per worker


def fit_replicate(study: Study, design: dict, index: int) -> dict:
    """Simulate one dataset, fit it and summarize the posterior (the trace is dropped)."""
    import numpy as np

    started = time.perf_counter()
    seeds = np.random.SeedSequence([study.seed, index]).generate_state(2)
    data_seed, sample_seed = int(seeds[0]), int(seeds[1])
    with _WORKER_LOCK:
        loader = _LOADERS.setdefault(study.root, SlotLoader(Path(study.root)))
        try:
            if study.sbc:
                compiled, shape, truth = _prior_replicate(study, loader, design, data_seed)
            else:
                compiled, shape, truth = _truth_replicate(study, loader, design, data_seed)
        except MlmError as exc:
            # A plain MlmError travels back from a Dask worker (UserCodeError cannot be
            # rebuilt from its message alone).
            raise MlmError(str(exc)) from None
        trace = _sample(compiled, study.settings, sample_seed)
    record = summarize(trace, shape, truth, study.settings)
    record.update(
        index=index,
        design=design,
        data_seed=data_seed,
        sample_seed=sample_seed,
        wall_time_s=round(time.perf_counter() - started, 3),
        compiled_here=shape.compiled_here,
    )
    shape.compiled_here = False
    return record


def _simulate(study: Study, loader: SlotLoader, design: dict, seed: int):
    import numpy as np

    simulate = getattr(loader.module("data"), "simulate", None)
    if not callable(simulate):
        raise MlmError("data.py defines no simulate(rng, ...); a study with a truth needs it")
    arguments = {**study.truth, **design}
    known = inspect.signature(simulate).parameters
    unknown = [k for k in arguments if k not in known]
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in known.values()):
        raise MlmError(
            f"data.py: simulate() has no parameter {', '.join(unknown)}; it takes "
            f"{', '.join(list(known)[1:])}"
        )
    return _call(
        "data.py, in simulate()", simulate, study, np.random.default_rng(seed), **arguments
    )


def _call(where: str, fn, study: Study, *args, **kwargs):
    """Call a project function, its errors shown as the user's own.

    Not through SlotLoader.call: its per-call module bookkeeping costs most of a second,
    more than sampling a replicate; the modules were imported through the loader already.
    """
    from mlm.errors import UserCodeError

    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise UserCodeError(where, exc, Path(study.root)) from exc


def _build(study: Study, loader: SlotLoader, data):
    from mlm.project import Project

    build = loader.function("model", "build", study.model_file)
    wanted = inspect.signature(build).parameters
    kwargs = {"data": data} if "data" in wanted else {}
    if "project" in wanted:
        kwargs["project"] = Project(study.root)
    return _call(f"{study.model_file}, in build()", build, study, **kwargs)


def _truth_replicate(study: Study, loader: SlotLoader, design: dict, seed: int):
    data = _simulate(study, loader, design, seed)
    model = _build(study, loader, data)
    compiled, shape = _compiled_for(study, design, model)
    truth = simulate_defaults(loader.module("data").simulate)
    truth.update(study.truth, **design)
    return compiled, shape, match_truth(truth, shape)


def _prior_replicate(study: Study, loader: SlotLoader, design: dict, seed: int):
    """SBC: parameters from the prior, data from the prior predictive, on the design's data."""
    key = (study.root, study.model_file, digest(design), "prior")
    if key not in _COMPILED:
        if design or callable(getattr(loader.module("data"), "simulate", None)):
            template = _simulate(study, loader, design, 0)
        else:
            template = loader.call("data", loader.function("data", "load"), {})
        model = _build(study, loader, template)
        compiled, shape = _compiled_for(study, design, model)
        _COMPILED[key] = [(shape, compiled, _prior_draw_function(model))]
    shape, compiled, (names, draw) = _COMPILED[key][0]
    values = draw(seed)
    prior = dict(zip(names, values, strict=True))
    observed = {holder: prior[name] for name, holder in shape.observed.items()}
    truth = {}
    for name in shape.summarized:
        for label, element in _elements(name, prior[name], shape.coords.get(name)):
            truth[label] = float(element)
    return compiled.with_data(**observed), shape, truth


def _prior_draw_function(model):
    """Draws of the summarized variables and the observed ones, reseeded per replicate."""
    from pymc.pytensorf import compile as compile_fn
    from pymc.pytensorf import find_rng_nodes, reseed_rngs

    names = [v.name for v in (*model.free_RVs, *model.deterministics, *model.observed_RVs)]
    outputs = [model[name] for name in names]
    fn = compile_fn(inputs=[], outputs=outputs, random_seed=0)
    rngs = find_rng_nodes(fn.maker.fgraph.outputs)

    def draw(seed: int):
        reseed_rngs(rngs, seed)
        return fn()

    return names, draw


@dataclass
class ModelShape:
    """A built model reduced to what reusing its compiled form needs."""

    graph: Any  # _model_graph(model), the reference to compare later builds with
    observed: dict[str, str]  # observed variable -> the shared variable holding its values
    summarized: list[str]
    coords: dict[str, list | None]
    compiled_here: bool = True


def _model_graph(model):
    """The model's log density and deterministics in terms of value variables, with the
    variables that may change between replicates (observed values, shared data)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    outputs = [model.logp(), *model.replace_rvs_by_values(model.deterministics)]
    observed = [model.rvs_to_values[rv] for rv in model.observed_RVs]
    values = [model.rvs_to_values[rv] for rv in model.free_RVs]
    shared = sorted(
        (v for v in ancestors(outputs) if isinstance(v, SharedVariable)), key=lambda v: v.name or ""
    )
    return outputs, observed, values, shared


def _same_structure(graph_a, graph_b) -> bool:
    """True when two built models differ at most in their observed values and shared data."""
    from pytensor.graph.basic import equal_computations

    out_a, obs_a, val_a, sh_a = graph_a
    out_b, obs_b, val_b, sh_b = graph_b
    if [s.name for s in sh_a] != [s.name for s in sh_b] or None in [s.name for s in sh_a]:
        return False
    if [o.type for o in obs_a] != [o.type for o in obs_b]:
        return False
    if [s.get_value().shape for s in sh_a] != [s.get_value().shape for s in sh_b]:
        return False
    return equal_computations(out_a, out_b, in_xs=obs_a + val_a + sh_a, in_ys=obs_b + val_b + sh_b)


def _compiled_for(study: Study, design: dict, model):
    """A compiled model for `model`: reused (with its data swapped in) when one fits."""
    import numpy as np
    from pytensor.compile.sharedvalue import SharedVariable

    key = (study.root, study.model_file, digest(design))
    if key not in _COMPILED and len(_COMPILED) >= KEEP_DESIGNS:
        del _COMPILED[next(iter(_COMPILED))]  # bounded memory over a long grid
    cached = _COMPILED.setdefault(key, [])
    graph = _model_graph(model)
    for shape, compiled, *_ in cached:
        if _same_structure(shape.graph, graph):
            _, observed, _, shared = graph
            updates = {s.name: s.get_value() for s in shared}
            for rv, value in zip(model.observed_RVs, observed, strict=True):
                if not isinstance(value, SharedVariable):  # pm.Data is among `shared`
                    updates[f"{OBSERVED_PREFIX}{rv.name}"] = np.asarray(value.data)
            known = {var.name for var in compiled.shared_var_keys}
            return compiled.with_data(**{k: v for k, v in updates.items() if k in known}), shape
    with persistent(study.compile_cache):
        compiled, shape = _compile(model, study.settings)
    cached.append((shape, compiled))
    del cached[:-KEEP_COMPILED]
    return compiled, shape


def _compile(model, settings: dict):
    import numpy as np
    import nutpie
    import pymc as pm
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable

    observed, holders = {}, {}
    for rv in model.observed_RVs:
        value = model.rvs_to_values[rv]
        if isinstance(value, SharedVariable) and value.name:  # pm.Data: swappable already
            holders[rv.name] = value.name
            continue
        if not hasattr(value, "data"):
            raise MlmError(
                f"observed variable {rv.name} is neither an array nor pm.Data; a study "
                "needs build(data) to pass observed values as one of these"
            )
        holders[rv.name] = f"{OBSERVED_PREFIX}{rv.name}"
        observed[rv.name] = pytensor.shared(np.asarray(value.data), name=holders[rv.name])
    swappable = pm.observe(model, observed) if observed else model
    compiled = nutpie.compile_pymc_model(swappable)
    # Elements of variables larger than settings["max_size"] are left out of summaries.
    summarized = [v.name for v in (*model.free_RVs, *model.deterministics)]
    dims = model.named_vars_to_dims
    coords = {
        name: [str(c) for c in model.coords[dims[name][0]]]
        if len(dims.get(name, ())) == 1
        else None
        for name in summarized
    }
    return compiled, ModelShape(_model_graph(model), holders, summarized, coords)


def _sample(compiled, settings: dict, seed: int):
    import nutpie

    return nutpie.sample(
        compiled,
        draws=settings["draws"],
        tune=settings["tune"],
        chains=settings["chains"],
        cores=1,
        seed=seed,
        progress_bar=False,
        save_warmup=False,
    )


# ---------------------------------------------------------------------------------------
# one replicate's summary


def simulate_defaults(simulate) -> dict:
    """The default values of simulate()'s parameters: the truth unless overridden."""
    return {
        name: p.default
        for name, p in list(inspect.signature(simulate).parameters.items())[1:]
        if p.default is not p.empty and isinstance(p.default, int | float)
    }


def match_truth(truth: dict, shape: ModelShape) -> dict:
    """Truth values by model element: `b1` -> b1, `sigma_e_treated` -> sigma_e[treated].

    simulate()'s arguments that name no model parameter (n_groups, ...) are design.
    """
    matched = {}
    for name, value in truth.items():
        if name in shape.summarized and shape.coords.get(name) is None:
            matched[name] = float(value)
            continue
        for variable in shape.summarized:
            labels = shape.coords.get(variable) or []
            label = name.removeprefix(f"{variable}_")
            if name.startswith(f"{variable}_") and label in labels:
                matched[f"{variable}[{label}]"] = float(value)
    return matched


def _elements(name: str, values, labels):
    import numpy as np

    values = np.asarray(values)
    if values.ndim == 0:
        yield name, values
        return
    flat = values.reshape(-1)
    for i, element in enumerate(flat):
        label = labels[i] if labels is not None and values.ndim == 1 else str(i)
        yield f"{name}[{label}]", element


def summarize(trace, shape: ModelShape, truth: dict, settings: dict) -> dict:
    """Posterior mean, sd, interval, hit and rank of each summarized element; diagnostics."""
    import arviz as az
    import numpy as np

    posterior = trace["posterior"].to_dataset()
    tail = (1 - settings["interval"]) / 2
    n_rank = settings["sbc_draws"]
    rows = {}
    for name in shape.summarized:
        if name not in posterior:
            continue
        draws = posterior[name].values  # (chain, draw, ...)
        flat = draws.reshape(draws.shape[0] * draws.shape[1], -1)
        if flat.shape[1] > settings["max_size"]:
            continue
        labels = shape.coords.get(name)
        for j in range(flat.shape[1]):
            label = (
                (f"{name}[{labels[j]}]" if labels is not None else f"{name}[{j}]")
                if flat.shape[1] > 1 or draws.ndim > 2
                else name
            )
            x = flat[:, j]
            lower, upper = np.quantile(x, [tail, 1 - tail])
            row = {
                "mean": float(x.mean()),
                "sd": float(x.std(ddof=1)),
                "lower": float(lower),
                "upper": float(upper),
                "excludes_zero": bool(lower > 0 or upper < 0),
            }
            if label in truth:
                t = truth[label]
                thinned = x[np.linspace(0, x.size - 1, n_rank).round().astype(int)]
                row.update(
                    truth=t, covered=bool(lower <= t <= upper), rank=int((thinned < t).sum())
                )
            rows[label] = row
    stats = trace["sample_stats"].to_dataset()
    r_hat = az.rhat(posterior)
    ess = az.ess(posterior, method="bulk")
    return {
        "parameters": rows,
        "diagnostics": {
            "divergences": int(stats["diverging"].values.sum()),
            "max_r_hat": float(max(float(r_hat[v].max()) for v in r_hat.data_vars)),
            "min_ess_bulk": float(min(float(ess[v].min()) for v in ess.data_vars)),
        },
    }


# ---------------------------------------------------------------------------------------
# the report: power, bias, RMSE, coverage, SBC ranks, each with its Monte Carlo error


def aggregate(records: list[dict], interval: float = 0.9) -> list[dict]:
    """One row per design point and parameter, each estimate with its Monte Carlo error."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for record in records:
        for name, row in record["parameters"].items():
            groups.setdefault((digest(record["design"]), name), []).append(
                {**row, "design": record["design"]}
            )
    rows = []
    for (_, name), items in groups.items():
        n = len(items)
        power = float(np.mean([i["excludes_zero"] for i in items]))
        row = {
            "design": items[0]["design"],
            "parameter": name,
            "n": n,
            "power": power,
            "power_se": math.sqrt(power * (1 - power) / n),
        }
        if all("truth" in i for i in items):
            error = np.array([i["mean"] - i["truth"] for i in items])
            rmse = float(np.sqrt(np.mean(error**2)))
            hits = int(sum(i["covered"] for i in items))
            coverage = hits / n
            row.update(
                # One truth per design point, or (SBC) the mean of the prior's draws.
                truth=_common([i["truth"] for i in items]),
                bias=float(error.mean()),
                bias_se=float(error.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
                rmse=rmse,
                rmse_se=float(np.std(error**2, ddof=1) / (2 * rmse * math.sqrt(n)))
                if n > 1 and rmse > 0
                else float("nan"),
                coverage=coverage,
                coverage_se=math.sqrt(interval * (1 - interval) / n),
                coverage_interval=list(wilson(hits, n)),
                ranks=[i["rank"] for i in items],
            )
        rows.append(row)
    return rows


def _common(values: list[float]) -> float:
    return values[0] if len(set(values)) == 1 else float(sum(values) / len(values))


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of a binomial proportion."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rank_uniformity(ranks: list[int], n_ranks: int, bins: int = 10) -> float:
    """The chi-square test's p-value that SBC ranks (0..n_ranks) are uniform."""
    import numpy as np
    from scipy import stats

    counts = np.histogram(ranks, bins=bins, range=(0, n_ranks + 1))[0]
    return float(stats.chisquare(counts).pvalue)


def draw_figures(
    rows: list[dict],
    grid: dict,
    folder: Path,
    settings: dict,
    fmt: str = "png",
    dpi: int = 150,
    named: set[str] = frozenset(),
) -> list[Path]:
    """Coverage (with binomial error bars), SBC rank histograms, and a power curve."""
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    calibrated = [r for r in rows if "coverage" in r]
    if calibrated:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(calibrated) + 1.5))
        labels = [_label(r) for r in calibrated]
        y = np.arange(len(calibrated))
        low = [max(0.0, r["coverage"] - r["coverage_interval"][0]) for r in calibrated]
        high = [max(0.0, r["coverage_interval"][1] - r["coverage"]) for r in calibrated]
        ax.errorbar([r["coverage"] for r in calibrated], y, xerr=[low, high], fmt="o")
        ax.axvline(settings["interval"], color="grey", linestyle="--")
        ax.set_yticks(y, labels)
        ax.set_xlabel(f"coverage of the {settings['interval']:.0%} intervals (Wilson 95%)")
        written.append(_save(fig, folder / f"coverage.{fmt}", dpi))
        fig, axes = plt.subplots(
            1, min(len(calibrated), 6), squeeze=False, figsize=(2.5 * min(len(calibrated), 6), 2.4)
        )
        for ax, row in zip(axes[0], calibrated, strict=False):
            ax.hist(row["ranks"], bins=10, range=(0, settings["sbc_draws"] + 1))
            ax.axhline(row["n"] / 10, color="grey", linestyle="--")
            ax.set_title(_label(row), fontsize=8)
        fig.suptitle("SBC rank histograms (flat when calibrated)")
        written.append(_save(fig, folder / f"ranks.{fmt}", dpi))
    if grid:
        effects = _effects(rows, named)
        axis = next(iter(grid))
        fig, ax = plt.subplots(figsize=(6, 4))
        by_line: dict[tuple, list] = {}
        for row in rows:
            if row["parameter"] not in effects:
                continue
            rest = tuple((k, v) for k, v in row["design"].items() if k != axis)
            by_line.setdefault((row["parameter"], rest), []).append(row)
        for (name, rest), items in sorted(by_line.items(), key=str):
            items.sort(key=lambda r: r["design"][axis])
            ax.errorbar(
                [r["design"][axis] for r in items],
                [r["power"] for r in items],
                yerr=[1.96 * r["power_se"] for r in items],
                marker="o",
                capsize=3,
                label=" ".join([name, *(f"{k}={v}" for k, v in rest)]),
            )
        ax.set_xlabel(axis)
        ax.set_ylabel(f"power (share of {settings['interval']:.0%} intervals excluding 0)")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
        written.append(_save(fig, folder / f"power.{fmt}", dpi))
    return written


def _effects(rows: list[dict], named: set[str]) -> set[str]:
    """Parameters the power curve shows: those named by --truth or --grid (`b1`,
    `sigma_e_treated` for sigma_e[treated]), else every one with a truth."""
    chosen = {r["parameter"] for r in rows if r["parameter"].replace("[", "_").rstrip("]") in named}
    return (
        chosen or {r["parameter"] for r in rows if "truth" in r} or {r["parameter"] for r in rows}
    )


def _label(row: dict) -> str:
    design = " ".join(f"{k}={v}" for k, v in row["design"].items())
    return f"{row['parameter']} {design}".strip()


def _save(fig, path: Path, dpi: int) -> Path:
    import os
    import tempfile

    import matplotlib.pyplot as plt

    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return path


def parse_values(pairs: list[str], several: bool) -> dict:
    """`["b1=0.3"]` -> {"b1": 0.3}; with `several`, `["n_groups=5,10"]` -> {"n_groups": [5, 10]}."""
    result = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise MlmError(f"{pair!r}: expected NAME=VALUE{',VALUE...' if several else ''}")
        values = (
            [_number(v.strip(), pair) for v in text.split(",")]
            if several
            else _number(text.strip(), pair)
        )
        result[name.strip()] = values
    return result


def _number(text: str, pair: str) -> int | float:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise MlmError(f"{pair!r}: {text!r} is not a number")


# ---------------------------------------------------------------------------------------
# what Project.study returns


def study_for(project, model_file: str, truth: dict, grid: dict, overrides: dict) -> Study:
    """A Study of `project`, its settings from mlm.toml [study] and then `overrides`."""
    table = project.config.raw.get("study", {})
    settings = dict(DEFAULTS)
    for name, value in {**table, **{k: v for k, v in overrides.items() if v is not None}}.items():
        if name not in DEFAULTS:
            raise MlmError(
                f"unknown study setting {name!r} (mlm.toml [study] or argument); "
                f"known: {', '.join(DEFAULTS)}"
            )
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise MlmError(f"study setting {name} must be a positive number, got {value!r}")
        settings[name] = value
    if not 0 < settings["interval"] < 1:
        raise MlmError(
            f"study setting interval must lie between 0 and 1, got {settings['interval']!r}"
        )
    for name, values in grid.items():
        if name in truth:
            raise MlmError(f"{name} is given both as a truth and as a grid axis")
        if not isinstance(values, list) or not values:
            raise MlmError(f"grid axis {name} needs a list of values")
    return Study(
        str(project.root),
        model_file,
        dict(truth),
        dict(grid),
        settings,
        project.seed,
        project.config.compile_cache,
    )


@dataclass
class StudyResult:
    """A finished study: its replicate records, one row per design point and parameter,
    and the figures drawn (figures/study/)."""

    study: Study
    variant: str
    records: list[dict]
    rows: list[dict]
    figures: list[Path]

    @classmethod
    def of(
        cls, project, study: Study, variant: str, records: list[dict], figures: bool = True
    ) -> StudyResult:
        rows = aggregate(records, study.settings["interval"])
        drawn = []
        if figures and records:
            folder = project.figures_dir / "study"
            if not project.single_variant:
                folder = folder / variant
            drawn = draw_figures(
                rows,
                study.grid,
                folder,
                study.settings,
                project.config.figure_format,
                project.config.figure_dpi,
                set(study.truth) | set(study.grid),
            )
        return cls(study, variant, records, rows, drawn)

    @property
    def computed(self) -> int:
        """How many replicates this call fitted (the rest came from the cache)."""
        return sum(bool(r.get("computed")) for r in self.records)

    def row(self, parameter: str, **design) -> dict:
        """The aggregate row of one parameter (at one design point, given a grid)."""
        for row in self.rows:
            if row["parameter"] == parameter and all(
                row["design"].get(k) == v for k, v in design.items()
            ):
                return row
        raise KeyError(f"no study row for {parameter} at {design}")

    def table(self):
        """The rows as a pandas DataFrame (without the SBC ranks)."""
        import pandas as pd

        frame = pd.DataFrame(
            [
                {
                    **r["design"],
                    **{
                        k: v
                        for k, v in r.items()
                        if k not in ("design", "ranks", "coverage_interval")
                    },
                }
                for r in self.rows
            ]
        )
        return frame

    def rank_p_values(self) -> dict[str, float]:
        """Chi-square p-values of SBC rank uniformity, per parameter row with a truth."""
        return {
            _label(r): rank_uniformity(r["ranks"], self.study.settings["sbc_draws"])
            for r in self.rows
            if "ranks" in r
        }
