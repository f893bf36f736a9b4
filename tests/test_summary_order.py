"""`mlm summary` reads like lme4's summary: population-level effects, then each group's SDs
and correlations, then the residual; group effects and auxiliaries left out unless asked,
a correlation's constant diagonal shown as its value, and --prob's interval."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import xarray as xr

from mlm.summary import hidden_note, ordered, summary_of


def _generated_trace() -> xr.DataTree:
    """A trace with the variables of a generated `y ~ Days + (Days | Subject)` model, in
    the order PyMC stores them (free variables first, deterministics after)."""
    rng = np.random.default_rng(3)
    chains, draws, levels = 2, 300, ["S1", "S2", "S3"]
    effect = ["Intercept", "Days"]

    def normal(mean, *shape):
        return rng.normal(mean, 1.0, size=(chains, draws, *shape))

    rho = np.clip(rng.normal(0.3, 0.1, size=(chains, draws)), -0.9, 0.9)
    corr = np.empty((chains, draws, 2, 2))
    corr[..., 0, 0] = 1.0 + rng.normal(0, 1e-16, size=(chains, draws))
    corr[..., 1, 1] = 1.0
    corr[..., 0, 1] = corr[..., 1, 0] = rho
    posterior = xr.Dataset(
        {
            "Intercept_centred": (("chain", "draw"), normal(300)),
            "b_Days": (("chain", "draw"), normal(10)),
            "a_Subject": (("chain", "draw", "Subject", "Subject_effect"), normal(5, 3, 2)),
            "chol_Subject": (("chain", "draw", "chol_dim"), normal(1, 3)),
            "sigma": (("chain", "draw"), np.abs(normal(25))),
            "Intercept": (("chain", "draw"), normal(250)),
            "u_Subject": (("chain", "draw", "Subject", "Subject_effect"), normal(0, 3, 2)),
            "sigma_Subject": (("chain", "draw", "Subject_effect"), np.abs(normal(20, 2))),
            "corr_Subject": (("chain", "draw", "Subject_effect", "Subject_effect_corr"), corr),
        },
        coords={"Subject": levels, "Subject_effect": effect, "Subject_effect_corr": effect},
    )
    return xr.DataTree.from_dict({"posterior": posterior})


def test_summary_is_in_lme4_order_and_leaves_out_group_effects_and_auxiliaries():
    table = summary_of(_generated_trace())
    assert list(table.index) == [
        "Intercept",
        "b_Days",
        "sigma_Subject[Intercept]",
        "sigma_Subject[Days]",
        "corr_Subject[Intercept, Days]",
        "sigma",
    ]
    assert list(table["role"]) == ["population"] * 2 + ["group"] * 3 + ["residual"]
    assert table.attrs["hidden"] == {
        "a_Subject": 6,
        "chol_Subject": 3,
        "u_Subject": 6,
        "Intercept_centred": 1,
    }
    note = hidden_note(table)
    assert "u_Subject" in note and "--var u_Subject" in note and "--all" in note
    assert "3 constant or mirrored cells of corr_Subject" in note


def test_all_and_var_show_what_the_default_leaves_out():
    every = summary_of(_generated_trace(), show_all=True)
    assert list(every.index[:2]) == ["Intercept", "b_Days"]
    assert {"u_Subject[S1, Days]", "Intercept_centred", "corr_Subject[Days, Days]"} <= set(
        every.index
    )
    assert every.attrs["hidden"] == {} and hidden_note(every) is None
    picked = summary_of(_generated_trace(), ["u_Subject"])
    assert list(picked.index) == [
        f"u_Subject[{s}, {e}]" for s in ("S1", "S2", "S3") for e in ("Intercept", "Days")
    ]


def test_constant_cells_show_their_value_with_sd_0_and_no_diagnostics():
    """corr[x, x] is 1 in every draw (to 1e-16 for one of them): both diagonal cells read
    alike, mean 1, sd 0, no ESS and no r_hat."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no RuntimeWarning from the 0/0 of a constant
        table = summary_of(_generated_trace(), ["corr_Subject"])
    for cell in ("corr_Subject[Intercept, Intercept]", "corr_Subject[Days, Days]"):
        row = table.loc[cell]
        assert row["mean"] == 1.0 and row["sd"] == 0.0, row
        assert row["eti95_lb"] == 1.0 and row["eti95_ub"] == 1.0
        for column in ("ess_bulk", "ess_tail", "r_hat"):
            assert math.isnan(row[column]), (cell, column)
    assert table.loc["corr_Subject[Intercept, Days]", "ess_bulk"] > 100


@pytest.mark.parametrize("prob", [0.95, 0.5, 0.995])
def test_prob_sets_the_equal_tailed_interval_and_names_its_columns(prob):
    trace = _generated_trace()
    table = summary_of(trace, ["b_Days"], prob=prob)
    label = {0.95: "eti95", 0.5: "eti50", 0.995: "eti99.5"}[prob]
    draws = trace["posterior"]["b_Days"].to_numpy().ravel()
    low, high = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
    assert table.loc["b_Days", f"{label}_lb"] == pytest.approx(low, rel=1e-6)
    assert table.loc["b_Days", f"{label}_ub"] == pytest.approx(high, rel=1e-6)


def test_a_hand_written_model_keeps_its_own_names_shown_in_its_order():
    rng = np.random.default_rng(4)
    posterior = xr.Dataset(
        {
            name: (("chain", "draw"), rng.normal(1, 0.1, size=(2, 100)))
            for name in ("intercept", "slope", "z_school", "sigma_school", "sigma", "effect")
        }
    )
    table = summary_of(xr.DataTree.from_dict({"posterior": posterior}))
    assert list(table.index) == ["intercept", "slope", "effect", "sigma_school", "sigma"]


def test_an_effect_sampled_on_the_unit_scale_keeps_its_place_in_the_model():
    # b_Time = z_b_Time * scale is a Deterministic, which the trace stores after the
    # sampled b_treat; the summary shows it where the model has it (MASS's Sitka)
    names = ["Intercept_centred", "z_b_Time", "b_treat", "sigma", "Intercept", "b_Time"]
    assert ordered(names)[:3] == ["Intercept", "b_Time", "b_treat"]
