"""Tests of this analysis: run them with `pytest` from the project folder."""

import data
import model
import numpy as np
import pymc as pm


def test_data_has_the_columns_the_model_uses():
    frame = data.load()
    assert {"school", "hours", "score"} <= set(frame.columns)
    assert frame["score"].notna().all()


def test_model_has_finite_log_probability_at_its_initial_point():
    built = model.build(data.load())
    assert all(np.isfinite(v) for v in built.point_logps().values())


def test_model_recovers_known_slope_from_simulated_data():
    truth = {"slope": 2.0, "sigma": 8.0}
    simulated = data.simulate(np.random.default_rng(1), slope=truth["slope"], sigma=truth["sigma"])
    with model.build(simulated):
        idata = pm.sample(draws=500, tune=500, chains=2, random_seed=1, progressbar=False)
    for name, value in truth.items():
        draws = idata["posterior"][name].to_numpy().reshape(-1)
        low, high = np.quantile(draws, [0.025, 0.975])
        assert low < value < high, f"{name}: 95% interval [{low:.2f}, {high:.2f}] misses {value}"
