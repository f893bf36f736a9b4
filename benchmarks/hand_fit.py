"""The example's fit as one hand-written PyMC script: what mlm's `run fit` is compared with.

    python hand_fit.py DATA.csv TRACE.nc [--compile-cache]

Same data, model, sampler settings and seed as example_project (model.py, fit.py), and
it saves the trace as mlm does. No mlm import, unless --compile-cache: then it samples
inside mlm.compiled.persistent(), as `mlm run fit` does, so that the comparison isolates
the rest of mlm's own work.
"""

import contextlib
import sys

import numpy as np
import pandas as pd
import pymc as pm

SEED = 2011

data = pd.read_csv(sys.argv[1])
data["condition"] = pd.Categorical(data["condition"], categories=["control", "treated"])
treated = (data["condition"] == "treated").to_numpy().astype(int)
groups = np.sort(data.loc[treated == 1, "group"].unique())
group_idx = np.searchsorted(groups, data["group"].to_numpy()).clip(0, len(groups) - 1)
coords = {
    "condition": ["control", "treated"],
    "group": [str(g) for g in groups],
    "obs": data["subject"].to_numpy(),
}

with pm.Model(coords=coords) as model:
    treated_ = pm.Data("treated", treated, dims="obs")
    group_ = pm.Data("group_idx", group_idx, dims="obs")
    y_ = pm.Data("y_obs", data["y"].to_numpy(), dims="obs")
    b0 = pm.Normal("b0", mu=0, sigma=100)
    b1 = pm.Normal("b1", mu=0, sigma=100)
    var_u = pm.Gamma("var_u", alpha=1, beta=1)
    var_e = pm.Uniform("var_e", lower=0, upper=100, dims="condition")
    sigma_u = pm.Deterministic("sigma_u", pm.math.sqrt(var_u))
    sigma_e = pm.Deterministic("sigma_e", pm.math.sqrt(var_e), dims="condition")
    z = pm.Normal("z", mu=0, sigma=1, dims="group")
    u = pm.Deterministic("u", z * sigma_u, dims="group")
    mu = b0 + b1 * treated_ + u[group_] * treated_
    pm.Normal("y", mu=mu, sigma=sigma_e[treated_], observed=y_, dims="obs")

    if "--compile-cache" in sys.argv:
        from mlm.compiled import persistent
    else:
        persistent = contextlib.nullcontext
    with persistent():
        idata = pm.sample(draws=2000, tune=1000, chains=4, random_seed=SEED)
    pm.compute_log_likelihood(idata)
    pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=SEED)

idata.to_netcdf(sys.argv[2])
