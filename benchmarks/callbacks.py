"""mlm's sampling path against nutpie's own, sampling the same model in one process:
is the compiled-model cache's code, and pm.sample around it, as fast as nutpie alone?
(RESULTS.md section 7)

    python benchmarks/callbacks.py [ROWS] [GROUPS] [ROUNDS]   (default 10,000, 1,000, 3)

The template's model compiled twice, once through mlm.compiled.persistent() and once by
nutpie itself, then sampled with the same seed and settings (2 chains x (200 tune + 200
draws), low-rank mass matrix, target_accept 0.95): nutpie.sample on each, and pm.sample
inside persistent() with progressbar=False, as `mlm run fit` does when its output is not
a terminal. Rounds interleaved.
"""

import sys
import time

import numpy as np
import nutpie
import pymc as pm

from mlm import compiled

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
groups = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
rng = np.random.default_rng(1)
school = rng.integers(0, groups, rows)
hours = rng.uniform(0, 10, rows)
score = 60 + 2 * hours + rng.normal(0, 6, groups)[school] + rng.normal(0, 8, rows)
with pm.Model(coords={"school": range(groups), "obs": np.arange(rows)}) as model:
    school_ = pm.Data("school_idx", school, dims="obs")
    hours_ = pm.Data("hours", hours, dims="obs")
    score_ = pm.Data("score_obs", score, dims="obs")
    intercept = pm.Normal("intercept", 50, 25)
    slope = pm.Normal("slope", 0, 5)
    sigma_school = pm.HalfNormal("sigma_school", 10)
    sigma = pm.HalfNormal("sigma", 10)
    z = pm.Normal("z_school", 0, 1, dims="school")
    effect = pm.Deterministic("school_effect", z * sigma_school, dims="school")
    pm.Normal(
        "score", intercept + effect[school_] + slope * hours_, sigma, observed=score_, dims="obs"
    )
with compiled.persistent() as counts:
    models = {"mlm": nutpie.compile_pymc_model(model)}
models["nutpie"] = nutpie.compile_pymc_model(model)
print(f"mlm's cache: {vars(counts)}")
names = [*models, "pm.sample"]
seed = int(np.random.default_rng(5).spawn(2)[0].integers(2**30))  # what pm.sample passes
for round_ in range(rounds):
    for name in names[:: 1 if round_ % 2 == 0 else -1]:
        start = time.perf_counter()
        if name == "pm.sample":
            with model, compiled.persistent():
                trace = pm.sample(
                    draws=200,
                    tune=200,
                    chains=2,
                    random_seed=5,
                    target_accept=0.95,
                    progressbar=False,
                    nuts_sampler_kwargs={"adaptation": "low_rank"},
                )
        else:
            trace = nutpie.sample(
                models[name],
                draws=200,
                tune=200,
                chains=2,
                seed=seed,
                target_accept=0.95,
                adaptation="low_rank",
                progress_bar=False,
            )
        print(
            f"{name:>7}: {time.perf_counter() - start:6.1f} s, "
            f"{int(trace['sample_stats']['n_steps'].sum()):,} steps",
            flush=True,
        )
