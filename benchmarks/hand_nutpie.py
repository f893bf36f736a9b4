"""The template's model fitted by a hand-written nutpie script: what `mlm run fit` is
compared with at scale (benchmarks/scale.py).

    python hand_nutpie.py DATA.csv TRACE.nc DRAWS TUNE CHAINS SEED [--phases OUT.json]

The model is project_template's model.py (score ~ hours + (1 | school), non-centred, all
data in pm.Data), written out here; the sampler settings are the template fit.py's
(low-rank mass matrix, target_accept 0.95). nutpie gets the seed that pm.sample would give
it (from the first of the per-chain generators numpy spawns from SEED), so that both make the same
draws and the comparison measures everything but the sampling itself. No mlm import.

With --phases the run also times one logp+gradient evaluation, keeps the warm-up's
statistics to count gradient evaluations, and writes where the time went as JSON.
"""

import json
import sys
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import nutpie  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402

csv, out, draws, tune, chains, seed = sys.argv[1:7]
draws, tune, chains, seed = int(draws), int(tune), int(chains), int(seed)
phases_path = sys.argv[sys.argv.index("--phases") + 1] if "--phases" in sys.argv else None
phases = {"import": time.perf_counter() - START}

clock = time.perf_counter()
data = pd.read_csv(csv, dtype={"school": "category"})
school_idx, schools = pd.factorize(data["school"], sort=True)
coords = {"school": list(schools), "obs": data.index.to_numpy()}
with pm.Model(coords=coords) as model:
    school = pm.Data("school_idx", school_idx, dims="obs")
    hours = pm.Data("hours", data["hours"].to_numpy(), dims="obs")
    score = pm.Data("score_obs", data["score"].to_numpy(), dims="obs")
    intercept = pm.Normal("intercept", mu=50, sigma=25)
    slope = pm.Normal("slope", mu=0, sigma=5)
    sigma_school = pm.HalfNormal("sigma_school", sigma=10)
    sigma = pm.HalfNormal("sigma", sigma=10)
    z_school = pm.Normal("z_school", mu=0, sigma=1, dims="school")
    school_effect = pm.Deterministic("school_effect", z_school * sigma_school, dims="school")
    mu = intercept + school_effect[school] + slope * hours
    pm.Normal("score", mu=mu, sigma=sigma, observed=score, dims="obs")
phases["read and build"] = time.perf_counter() - clock

clock = time.perf_counter()
compiled = nutpie.compile_pymc_model(model)
phases["compile"] = time.perf_counter() - clock

# pm.sample's seed for nutpie: the first of one generator per chain spawned from SEED.
first_seed = int(np.random.default_rng(seed).spawn(chains)[0].integers(2**30))
clock = time.perf_counter()
trace = nutpie.sample(
    compiled,
    draws=draws,
    tune=tune,
    chains=chains,
    seed=first_seed,
    target_accept=0.95,
    adaptation="low_rank",
    save_warmup=phases_path is not None,
)
phases["sampling"] = time.perf_counter() - clock

clock = time.perf_counter()
trace.to_netcdf(out)
phases["write trace"] = time.perf_counter() - clock

if not phases_path:
    print(json.dumps(phases))
else:
    stats = trace["warmup_sample_stats"] if "warmup_sample_stats" in trace.children else None
    steps = int(trace["sample_stats"]["n_steps"].sum())
    warm = int(stats["n_steps"].sum()) if stats is not None else 0
    # One logp+gradient evaluation: PyTensor's compiled numba function that nutpie's
    # callback calls, on the model's data, at a point of the posterior.
    fn = compiled.logp_func
    point = np.zeros(compiled.n_dim)
    fn(point)
    times = []
    for _ in range(30):
        clock = time.perf_counter()
        fn(point)
        times.append(time.perf_counter() - clock)
    phases.update(
        {
            "gradient_evaluations": steps + warm,
            "gradient_evaluations_warmup": warm,
            "logp_grad_s": float(np.median(times)),
            "chains": chains,
            "draws": draws,
            "tune": tune,
            "max_tree_depth_share": float(trace["sample_stats"]["maxdepth_reached"].mean()),
            "mean_steps_per_draw": steps / (chains * draws),
        }
    )
    # The template's fit.py goes on to the pointwise log-likelihood and a posterior
    # predictive draw per row; timed here on the first 20 draws of each chain.
    kept = 20
    import xarray as xr

    thinned = xr.DataTree.from_dict(
        {"posterior": trace["posterior"].to_dataset().isel(draw=slice(0, kept))}
    )
    with model:
        clock = time.perf_counter()
        pm.compute_log_likelihood(thinned, progressbar=False)
        phases["log_likelihood_s_per_draw"] = (time.perf_counter() - clock) / (kept * chains)
        clock = time.perf_counter()
        pm.sample_posterior_predictive(
            thinned, extend_inferencedata=True, random_seed=seed, progressbar=False
        )
        phases["posterior_predictive_s_per_draw"] = (time.perf_counter() - clock) / (kept * chains)
    clock = time.perf_counter()
    thinned.to_netcdf(out + ".thinned.nc")
    phases["write_s_per_gb"] = (time.perf_counter() - clock) / (thinned.nbytes / 1e9)
    with open(phases_path, "w") as f:
        json.dump(phases, f, indent=2)
