"""Where chunked LOO's time goes, before and after its sums over the draws went whole-chunk.

Builds the template's varying-intercept model on ROWS simulated rows in 1,000 schools,
makes a synthetic posterior of DRAWS draws (2 chains) around the truth, and runs
`mlm.loo.pointwise` twice in one process: with the chunk's reduction as it was (arviz_stats'
loo on the block, which runs per row the Pareto smoothing and two log-sum-exps over the
draws) and as it is (`loo.psis_loo`: arviz_stats' psislw per row, the two log-sum-exps for
the whole chunk at once). Light timers (a counter and a clock around each call, a few
microseconds against hundreds per row) split the time into the log-density of each chunk
(`loo._log_density`, one compiled PyTensor call per draw), arviz_stats' per-row loo, its
psislw and, inside that, the tail fit (`_gpdfit`). As the floor a whole-chunk PSIS would
approach, it times numpy sorting every row's draws of a chunk at once (PSIS sorts each
row). Prints both side by side with their ratio, and whether the results are identical.

    python benchmarks/loo_profile.py [ROWS] [DRAWS] [ROUNDS]   # default 200000 400 1

On a shared machine: `flock /tmp/mlm-heavy.lock python benchmarks/loo_profile.py`.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import numpy as np

CHAINS = 2
REDUCTION = "a chunk's reduction to elpd_i, k, p_loo_i"
TIMES: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def timed(owner, name: str, label: str) -> None:
    """Wrap owner.name with a clock that adds to TIMES[label]."""
    original = getattr(owner, name)
    is_static = isinstance(owner.__dict__.get(name), staticmethod)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[label] += time.perf_counter() - start
            CALLS[label] += 1

    setattr(owner, name, staticmethod(wrapper) if is_static else wrapper)


def build(rows: int, schools: int = 1_000):
    import pandas as pd
    import pymc as pm

    rng = np.random.default_rng(1)
    school = rng.integers(0, schools, rows)
    hours = rng.uniform(0, 10, rows)
    effect = rng.normal(0, 5, schools)
    score = 50 + 2 * hours + effect[school] + rng.normal(0, 8, rows)
    data = pd.DataFrame({"school": school, "hours": hours, "score": score})
    with pm.Model(coords={"school": range(schools), "obs": data.index.to_numpy()}) as model:
        idx = pm.Data("school_idx", data["school"].to_numpy(), dims="obs")
        x = pm.Data("hours", data["hours"].to_numpy(), dims="obs")
        y = pm.Data("score_obs", data["score"].to_numpy(), dims="obs")
        intercept = pm.Normal("intercept", mu=50, sigma=25)
        slope = pm.Normal("slope", mu=0, sigma=5)
        sigma_school = pm.HalfNormal("sigma_school", sigma=10)
        sigma = pm.HalfNormal("sigma", sigma=10)
        z = pm.Normal("z_school", mu=0, sigma=1, dims="school")
        mu = intercept + z[idx] * sigma_school + slope * x
        pm.Normal("score", mu=mu, sigma=sigma, observed=y, dims="obs")
    return model, effect


def posterior(draws: int, effect: np.ndarray):
    import xarray as xr

    rng = np.random.default_rng(2)
    chains, per = CHAINS, draws // CHAINS
    n = (chains, per)
    return xr.Dataset(
        {
            "intercept": (("chain", "draw"), 50 + rng.normal(0, 0.3, n)),
            "slope": (("chain", "draw"), 2 + rng.normal(0, 0.01, n)),
            "sigma_school": (("chain", "draw"), np.abs(5 + rng.normal(0, 0.1, n))),
            "sigma": (("chain", "draw"), np.abs(8 + rng.normal(0, 0.02, n))),
            "z_school": (
                ("chain", "draw", "school"),
                effect / 5 + rng.normal(0, 0.05, (*n, effect.size)),
            ),
        }
    )


def before(log_lik: np.ndarray, r_eff: float):
    """The chunk's reduction as loo.py did it before: arviz_stats' loo on the block as a
    DataArray, one row at a time (its psislw and both log-sum-exps per row)."""
    import gc

    import xarray as xr

    block = xr.DataArray(
        log_lik.reshape(CHAINS, -1, log_lik.shape[1]), dims=("chain", "draw", "obs")
    )
    elpd_i, pareto_k, p_loo_i = block.azstats.loo(sample_dims=("chain", "draw"), r_eff=r_eff)
    del block
    gc.collect()
    return elpd_i.to_numpy(), pareto_k.to_numpy(), p_loo_i.to_numpy()


def run(label: str, model, post, reduction) -> tuple[float, dict, object]:
    """loo.pointwise with `reduction` in place of loo.psis_loo: wall, part times, result."""
    from mlm import loo

    TIMES.clear()
    CALLS.clear()
    original = loo.psis_loo

    def reduce(log_lik, r_eff):
        start = time.perf_counter()
        try:
            return reduction(log_lik, r_eff)
        finally:
            TIMES[REDUCTION] += time.perf_counter() - start
            CALLS[REDUCTION] += 1

    loo.psis_loo = reduce
    try:
        start = time.perf_counter()
        points = loo.pointwise(model, post)
        total = time.perf_counter() - start
    finally:
        loo.psis_loo = original
    return total, {k: (TIMES[k], CALLS[k]) for k in TIMES}, points


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    draws = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    from arviz_stats.base.array import BaseArray
    from arviz_stats.base.diagnostics import _DiagnosticsBase

    from mlm import loo

    # Warm-up on 2,000 rows: PyTensor compiles (or loads) the log-density function once.
    small, effect = build(2_000)
    loo.pointwise(small, posterior(draws, effect))
    model, effect = build(rows)
    post = posterior(draws, effect)
    timed(loo, "_log_density", "log-density (PyTensor, per draw)")
    timed(BaseArray, "loo", "arviz_stats loo (per row: psislw + 2 logsumexp)")
    timed(BaseArray, "psislw", "arviz_stats psislw (per row)")
    timed(_DiagnosticsBase, "_gpdfit", "  of which _gpdfit, the tail fit (per row)")
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    runs = []
    for _ in range(rounds):  # interleaved, so a change in the machine's load hits both
        runs.append((run("before", model, post, before), run("after", model, post, loo.psis_loo)))
    for number, ((t0, parts0, p0), (t1, parts1, p1)) in enumerate(runs, 1):
        same = all(np.array_equal(p0[v].to_numpy(), p1[v].to_numpy()) for v in p0.data_vars)
        report(rows, draws, f"round {number} of {rounds}", t0, parts0, t1, parts1, p1, same)


def report(rows, draws, title, t0, parts0, t1, parts1, p1, same) -> None:
    from mlm import loo

    # The floor: one chunk's rows sorted along the draws at once, as numpy does it.
    size = max(1, loo.CHUNK_VALUES // draws)
    block = np.random.default_rng(3).normal(size=(min(size, rows), draws))
    start = time.perf_counter()
    np.sort(block, axis=1)
    sort_all = (time.perf_counter() - start) * (rows / block.shape[0])

    print(f"chunked LOO of {rows:,} rows x {draws} draws ({size:,} rows per chunk), {title}")
    print(
        f"elpd_loo {float(p1['elpd_i'].sum()):.1f}; max Pareto k "
        f"{float(p1['pareto_k'].max()):.2f}; before and after identical to the bit: {same}"
    )
    print(f"{'part (seconds; us per row)':<50}{'before':>16}{'after':>16}{'ratio':>8}")
    labels = [
        "log-density (PyTensor, per draw)",
        REDUCTION,
        "arviz_stats loo (per row: psislw + 2 logsumexp)",
        "arviz_stats psislw (per row)",
        "  of which _gpdfit, the tail fit (per row)",
    ]
    for label in labels:
        a, b = parts0.get(label, (0.0, 0))[0], parts1.get(label, (0.0, 0))[0]
        ratio = f"{a / b:.2f}" if a and b else ""
        print(
            f"{label:<50}{a:>8.1f}{a / rows * 1e6:>7.0f}u{b:>8.1f}{b / rows * 1e6:>7.0f}u{ratio:>8}"
        )
    print(
        f"{'total':<50}{t0:>8.1f}{t0 / rows * 1e6:>7.0f}u{t1:>8.1f}{t1 / rows * 1e6:>7.0f}u"
        f"{t0 / t1:>8.2f}"
    )
    psislw = parts1.get("arviz_stats psislw (per row)", (0.0, 0))[0]
    print(
        f"numpy sorting every row's draws at once: {sort_all:.2f} s ({sort_all / rows * 1e6:.1f}"
        f" us/row); arviz_stats' psislw, one row at a time, takes {psislw / sort_all:.0f}x that"
    )
    print(
        f"at 1,000,000 rows (linear): before {t0 * 1e6 / rows / 60:.1f} min, after "
        f"{t1 * 1e6 / rows / 60:.1f} min, at {draws} draws"
    )


if __name__ == "__main__":
    main()
