"""The template's model fitted by bambi (benchmarks/scale.py): its default sampler and
priors, the same formula, draws, chains and seed.

    python bambi_fit.py DATA.csv DRAWS TUNE CHAINS SEED
"""

import json
import sys
import time

START = time.perf_counter()

import bambi as bmb  # noqa: E402
import pandas as pd  # noqa: E402

csv, draws, tune, chains, seed = sys.argv[1:6]
phases = {"import": time.perf_counter() - START}
clock = time.perf_counter()
data = pd.read_csv(csv, dtype={"school": "category"})
model = bmb.Model("score ~ hours + (1 | school)", data)
idata = model.fit(
    draws=int(draws), tune=int(tune), chains=int(chains), random_seed=int(seed), target_accept=0.95
)
phases["fit"] = time.perf_counter() - clock
print(json.dumps(phases))
