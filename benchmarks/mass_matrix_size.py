"""Low-rank against diagonal mass matrix by the model's number of free parameters: the
numbers behind the template fit.py's choice (docs/validation.md, "The mass matrix").

    python benchmarks/mass_matrix_size.py [GROUPS ...]     (default 50 100 200 400 1000)

For each number of groups, the model `mlm new --formula "score ~ hours + (1 | school)"`
writes for 10 rows per school (a school SD of 6 against a residual SD of 8: informative
levels, so a centred term; GROUPS + 4 free parameters), compiled once through mlm's cache,
sampled with the template fit.py's settings but 2 chains x (500 tune + 500 draws), with
nutpie's low-rank and diagonal adaptation. Prints one row per run: free parameters, wall
seconds of nutpie.sample, the smallest bulk ESS and it per second, divergences.
"""

import sys
import time

import arviz as az
import numpy as np
import nutpie
import pandas as pd

from mlm import compiled
from mlm.codegen import model_source
from mlm.formula import parse


def data(groups: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    school = np.repeat(np.arange(groups), 10)
    hours = rng.uniform(0, 10, school.size)
    score = 60 + 2 * hours + rng.normal(0, 6, groups)[school] + rng.normal(0, 8, school.size)
    return pd.DataFrame({"score": score, "hours": hours, "school": [f"s{k}" for k in school]})


def main(sizes: list[int]) -> None:
    for groups in sizes:
        frame = data(groups)
        namespace: dict = {}
        exec(model_source(parse("score ~ hours + (1 | school)"), frame), namespace)
        model = namespace["build"](frame)
        free = sum(v.size for v in model.initial_point().values())
        with compiled.persistent():
            compiled_model = nutpie.compile_pymc_model(model)
        for adaptation in ("low_rank", "diag"):
            start = time.perf_counter()
            trace = nutpie.sample(
                compiled_model,
                draws=500,
                tune=500,
                chains=2,
                seed=5,
                target_accept=0.95,
                progress_bar=False,
                adaptation=adaptation,
            )
            seconds = time.perf_counter() - start
            ess = az.ess(trace, method="bulk")
            smallest = min(float(ess[v].min()) for v in ess.data_vars)
            divergences = int(trace["sample_stats"]["diverging"].sum())
            print(
                f"| {groups} | {free} | {adaptation} | {seconds:.1f} s | {smallest:.0f} | "
                f"{smallest / seconds:.0f} | {divergences} |",
                flush=True,
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [50, 100, 200, 400, 1000])
