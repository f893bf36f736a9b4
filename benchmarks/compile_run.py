"""Where a fit's time goes, and what reusing a compiled nutpie model saves (one process).

    python compile_run.py phases|reuse|compile [--cache] OUT.json

phases: the example's fit.py step by step: build, nutpie compile (PyTensor graph to
numba, then nutpie's numba cfunc wrapper), sampling, log-likelihood, posterior
predictive, writing the NetCDF.
reuse: compile once with the observed values as shared data (as mlm study does), then
fit a changed dataset with `with_data` instead of recompiling.
compile: nutpie.compile_pymc_model alone, optionally with cache=True (passed to numba).
"""

import importlib.util
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
SEED = 2011


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clock():
    start = time.perf_counter()
    return lambda: round(time.perf_counter() - start, 3)


def phases() -> dict:
    out, t = {}, clock()
    import numba
    import nutpie
    import nutpie.compile_pymc as compile_pymc
    import pymc as pm

    out["import"] = t()
    t = clock()
    model = _module(EXAMPLE / "model.py", "m").build(_module(EXAMPLE / "data.py", "d").load())
    out["build"] = t()
    made, wrapped = [], []
    make_functions, cfunc = compile_pymc._make_functions, numba.cfunc

    def timed_make(*a, **k):
        t = clock()
        result = make_functions(*a, **k)
        made.append(t())
        return result

    def timed_cfunc(*a, **k):
        decorate = cfunc(*a, **k)

        def inner(f):
            t = clock()
            result = decorate(f)
            wrapped.append(t())
            return result

        return inner

    compile_pymc._make_functions, numba.cfunc = timed_make, timed_cfunc
    t = clock()
    compiled = nutpie.compile_pymc_model(model)
    out["nutpie compile"] = t()
    out["  of which PyTensor graph -> numba functions"] = round(sum(made), 3)
    out["  of which nutpie's own cfunc wrappers (recompiled in every process)"] = round(
        sum(wrapped), 3
    )
    t = clock()
    nutpie.sample(compiled, draws=2000, tune=1000, chains=4, seed=SEED, progress_bar=False)
    out["sampling (4 chains x 3000)"] = t()
    with model:
        idata = pm.sample(draws=2000, tune=1000, chains=4, random_seed=SEED, progressbar=False)
        t = clock()
        pm.compute_log_likelihood(idata, progressbar=False)
        out["compute_log_likelihood"] = t()
        t = clock()
        pm.sample_posterior_predictive(
            idata, extend_inferencedata=True, random_seed=SEED, progressbar=False
        )
        out["sample_posterior_predictive"] = t()
    t = clock()
    with tempfile.TemporaryDirectory() as tmp:
        idata.to_netcdf(Path(tmp) / "t.nc")
    out["to_netcdf"] = t()
    return out


def reuse() -> dict:
    import numpy as np
    import nutpie
    import pymc as pm
    import pytensor

    data = _module(EXAMPLE / "data.py", "d").load()
    build = _module(EXAMPLE / "model.py", "m").build
    out = {}
    t = clock()
    model = build(data)
    y = pytensor.shared(data["y"].to_numpy(), name="y_obs")
    compiled = nutpie.compile_pymc_model(pm.observe(model, {"y": y}))
    nutpie.sample(compiled, draws=2000, tune=1000, chains=4, seed=SEED, progress_bar=False)
    out["cold: build + compile + sample"] = t()
    t = clock()
    changed = data["y"].to_numpy().copy()
    changed[0] += 0.5
    again = compiled.with_data(y_obs=changed)
    nutpie.sample(again, draws=2000, tune=1000, chains=4, seed=SEED, progress_bar=False)
    out["data-only: with_data + sample"] = t()
    del np
    return out


def compile_only(cache: bool) -> dict:
    import nutpie

    model = _module(EXAMPLE / "model.py", "m").build(_module(EXAMPLE / "data.py", "d").load())
    t = clock()
    nutpie.compile_pymc_model(model, **({"cache": True} if cache else {}))
    return {"compile_s": t()}


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[-1]
    result = {"phases": phases, "reuse": reuse}.get(mode, lambda: None)()
    if mode == "compile":
        result = compile_only("--cache" in sys.argv)
    Path(out).write_text(json.dumps(result))
