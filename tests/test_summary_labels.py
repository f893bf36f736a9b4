"""Summaries label every cell with its own numbers (ArviZ 1 can cross a 2-d variable's
labels when several variables are summarized at once)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from mlm.check import measure, summary_table


def _trace() -> xr.DataTree:
    rng = np.random.default_rng(1)
    levels, effects = ["a", "b", "c"], ["Intercept", "x"]
    # u[level, effect] = 100 * level index + effect index (+ a little noise)
    centre = np.array([[100 * i + j for j in range(2)] for i in range(3)], dtype=float)
    u = centre + rng.normal(0, 0.01, size=(2, 50, 3, 2))
    sd = rng.normal(5, 0.1, size=(2, 50, 2))
    posterior = xr.Dataset(
        {
            "sd_g": (("chain", "draw", "effect"), sd),
            "u": (("chain", "draw", "level", "effect"), u),
        },
        coords={"level": levels, "effect": effects},
    )
    return xr.DataTree.from_dict({"posterior": posterior})


def test_each_cell_keeps_its_own_label_when_variables_share_a_dim():
    table = summary_table(_trace())
    for i, level in enumerate(["a", "b", "c"]):
        for j, effect in enumerate(["Intercept", "x"]):
            assert abs(table.loc[f"u[{level}, {effect}]", "mean"] - (100 * i + j)) < 0.1


def test_the_worst_cell_named_by_the_diagnostics_is_a_real_label():
    numbers = measure(_trace())
    assert numbers["max_r_hat_at"].startswith(("u[", "sd_g["))


def test_a_constant_cell_is_neither_checked_nor_named():
    """corr[x, x] = 1 in every draw (to 1e-16): no ESS to speak of, never the worst cell."""
    rng = np.random.default_rng(2)
    off = np.clip(rng.normal(0.3, 0.1, size=(4, 200)), -0.99, 0.99)
    corr = np.empty((4, 200, 2, 2))
    corr[..., 0, 0] = corr[..., 1, 1] = 1.0 + rng.normal(0, 1e-16, size=(4, 200))
    corr[..., 0, 1] = corr[..., 1, 0] = off
    posterior = xr.Dataset(
        {"corr": (("chain", "draw", "e", "e2"), corr)},
        coords={"e": ["Intercept", "x"], "e2": ["Intercept", "x"]},
    )
    numbers = measure(xr.DataTree.from_dict({"posterior": posterior}))
    for key in ("max_r_hat_at", "min_ess_bulk_at", "min_ess_tail_at"):
        assert numbers[key] in ("corr[Intercept, x]", "corr[x, Intercept]"), numbers
    assert numbers["min_ess_bulk"] > 400
