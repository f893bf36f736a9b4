"""One timed piece of benchmarks/study.py, run in a fresh process.

    python study_run.py cold PROJECT            one fit of one simulated trial, from scratch
    python study_run.py study PROJECT N WORKERS a study of N replicates (cache cleared first)

Prints one JSON line: {"wall_s": ..., "replicates": ...}.
"""

import json
import shutil
import sys
import time
from pathlib import Path

kind, root = sys.argv[1], Path(sys.argv[2])

if __name__ == "__main__":
    start = time.perf_counter()
    if kind == "cold":
        # What one replicate costs without mlm's study machinery: import, build, compile, sample
        # with the study's own settings (mlm.toml [study]: 500 draws, 500 tune, 2 chains).
        import numpy as np
        import pymc as pm

        sys.path.insert(0, str(root))
        import data
        import model

        with model.build(data.simulate(np.random.default_rng(1), b1=0.3)):
            pm.sample(draws=500, tune=500, chains=2, random_seed=1, progressbar=False)
        print(json.dumps({"wall_s": time.perf_counter() - start, "replicates": 1}))
    else:
        from mlm import Project

        replicates, workers = int(sys.argv[3]), int(sys.argv[4])
        shutil.rmtree(root / ".mlm" / "study", ignore_errors=True)
        result = Project(root).study(replicates, truth={"b1": 0.3}, workers=workers, figures=False)
        wall = time.perf_counter() - start
        print(json.dumps({"wall_s": wall, "replicates": len(result.records)}))
