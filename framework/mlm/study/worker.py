"""The study's worker: one replicate, simulated, fitted and summarized.

A worker imports the project by file path and compiles the model once per design point,
reusing the compiled model for every replicate whose model differs only in its data
(nutpie's `with_data` on the observed values and pm.Data). Only a summary of each fit
travels back; the trace is dropped.
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlm.compiled import persistent
from mlm.errors import MlmError, UserCodeError
from mlm.fingerprint import digest
from mlm.layout import Layout
from mlm.slots import SlotLoader, working_directory
from mlm.study.design import Study
from mlm.study.summary import elements, summarize

OBSERVED_PREFIX = "mlm_observed_"
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
    with _WORKER_LOCK, working_directory(Path(study.root)):
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
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise UserCodeError(where, exc, Path(study.root)) from exc


def _build(study: Study, loader: SlotLoader, data):
    build = loader.function("model", "build", study.model_file)
    wanted = inspect.signature(build).parameters
    kwargs = {"data": data} if "data" in wanted else {}
    if "project" in wanted:
        kwargs["project"] = Layout(study.root)
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
        for label, element in elements(name, prior[name], shape.coords.get(name)):
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
