"""Where nutpie's time goes with 1,000 groups: the low-rank mass matrix against the
diagonal one, on one compiled model (scale.py's finding; RESULTS.md section 7).

    python benchmarks/mass_matrix.py [ROWS] [GROUPS]     (default 10,000 and 1,000)

The template's model, compiled once (through mlm's compiled-model cache), sampled with
2 chains x (200 tune + 200 draws) with adaptation="low_rank" (the template fit.py's
setting) and with nutpie's default diagonal adaptation, 3 rounds interleaved. Prints
wall time and gradient evaluations of each.
"""

import sys
import time

import numpy as np
import nutpie
import pymc as pm

from mlm import compiled

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
groups = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
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
with compiled.persistent():
    compiled_model = nutpie.compile_pymc_model(model)

settings = {"low_rank": {"adaptation": "low_rank"}, "diagonal": {}}
for round_ in range(3):
    for name in list(settings)[:: 1 if round_ % 2 == 0 else -1]:
        start = time.perf_counter()
        trace = nutpie.sample(
            compiled_model,
            draws=200,
            tune=200,
            chains=2,
            seed=5,
            target_accept=0.95,
            progress_bar=False,
            save_warmup=True,
            **settings[name],
        )
        steps = int(
            trace["sample_stats"]["n_steps"].sum() + trace["warmup_sample_stats"]["n_steps"].sum()
        )
        print(
            f"{name:>9}: {time.perf_counter() - start:6.1f} s, {steps:,} gradient evaluations",
            flush=True,
        )
