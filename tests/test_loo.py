"""LOO without a stored log-likelihood: computed a chunk of rows at a time, and the same.

The reference everywhere is ArviZ's own az.loo on the log-likelihood that
pm.compute_log_likelihood stores for every draw and row -- what fit.py did before.
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import pytest

from mlm import Project, loo

STORE_LOG_LIKELIHOOD = "        pm.compute_log_likelihood(idata)\n        thinned = idata"


def fitted(model, draws=150, seed=3):
    with model:
        idata = pm.sample(draws=draws, tune=150, chains=2, random_seed=seed, progressbar=False)
        pm.compute_log_likelihood(idata, progressbar=False)
    return idata


def assert_same_loo(points, idata):
    reference = az.loo(idata, pointwise=True)
    ours = loo.elpd_data(points)
    np.testing.assert_allclose(points["elpd_i"], reference.elpd_i, rtol=1e-10)
    np.testing.assert_allclose(points["pareto_k"], reference.pareto_k, rtol=1e-10)
    for field in ("elpd", "se", "p", "n_samples", "n_data_points", "good_k", "warning"):
        assert getattr(ours, field) == pytest.approx(getattr(reference, field), rel=1e-10)
    assert list(points["obs"].to_numpy()) == list(reference.elpd_i["obs"].to_numpy())


def test_chunked_loo_equals_loo_of_the_stored_log_likelihood(project_dir: Path):
    model = Project(project_dir).model
    idata = fitted(model)
    said = []
    # 120 rows in chunks of 7: 18 chunks, the last one of 1 row.
    points = loo.pointwise(
        model, idata["posterior"].to_dataset(), rows_per_chunk=7, say=said.append
    )
    assert said == ["log-likelihood of 120 rows in 18 chunks of 7"]
    assert_same_loo(points, idata)
    # The model's own pm.Data are untouched: still all 120 rows.
    assert model["score_obs"].get_value().shape == (120,)


def test_rows_outside_pm_data_are_evaluated_in_one_piece():
    """A row-length NumPy array in the graph cannot be cut into chunks: one piece, still
    the same LOO."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = 1 + 2 * x + rng.normal(size=60)
    with pm.Model(coords={"obs": np.arange(60)}) as model:
        y_ = pm.Data("y_obs", y, dims="obs")
        b = pm.Normal("b", 0, 5)
        sigma = pm.HalfNormal("sigma", 2)
        pm.Normal("y", mu=1 + b * x, sigma=sigma, observed=y_, dims="obs")
    idata = fitted(model)
    said = []
    points = loo.pointwise(
        model, idata["posterior"].to_dataset(), rows_per_chunk=8, say=said.append
    )
    assert said[-1].endswith("in one piece")
    assert_same_loo(points, idata)


def test_the_generated_fit_keeps_100_predictive_draws_and_no_log_likelihood(tmp_path: Path):
    """The template's own fit.py (fewer tuning steps only): 4 chains x 2,000 draws, a
    posterior predictive for every 80th draw, no pointwise log-likelihood in the trace."""
    from mlm.template import new_project

    root = new_project("full", tmp_path)
    fit = root / "fit.py"
    fit.write_text(fit.read_text().replace("tune=1000", "tune=150"))
    project = Project(root)
    project.run("fit")
    idata = project.idata
    assert idata["posterior"].sizes["chain"] * idata["posterior"].sizes["draw"] == 8000
    predictive = idata["posterior_predictive"]["score"]
    assert predictive.sizes["chain"] * predictive.sizes["draw"] == 100
    assert predictive.sizes["obs"] == 120
    assert "log_likelihood" not in idata.children


def test_compare_without_log_likelihood_matches_the_stored_one(variants_dir: Path, tmp_path):
    """The same draws (same seed), fit.py storing the log-likelihood or not: the same
    comparison; the computed one's per-row results are kept in the store."""
    computed = json.loads((variants_dir / ".mlm" / "compare.json").read_text())["table"]
    kept = sorted(
        p.relative_to(variants_dir / ".mlm").as_posix()
        for p in (variants_dir / ".mlm" / "loo").rglob("*.nc")
    )
    assert [Path(p).parent.as_posix() for p in kept] == ["loo/model", "loo/wide"]

    fit = variants_dir / "fit.py"
    fit.write_text(fit.read_text().replace("        thinned = idata", STORE_LOG_LIKELIHOOD))
    project = Project(variants_dir)
    project.run("compare")
    assert "log_likelihood" in project.idata.children
    stored = json.loads((variants_dir / ".mlm" / "compare.json").read_text())["table"]
    assert set(stored) == set(computed) == {"model", "wide"}
    for name in stored:
        for column in ("elpd", "se", "p", "elpd_diff", "dse"):
            assert stored[name][column] == pytest.approx(computed[name][column], rel=1e-9)


def test_cached_pointwise_loo_is_reused_when_the_other_variant_changes(variants_dir: Path):
    cache = variants_dir / ".mlm" / "loo"
    before = {p.name: p.stat().st_mtime_ns for p in cache.rglob("*.nc")}
    wide = variants_dir / "models" / "wide.py"
    wide.write_text(wide.read_text().replace("sigma=50)", "sigma=20)"))
    Project(variants_dir).run("compare")
    after = {p.name: p.stat().st_mtime_ns for p in cache.rglob("*.nc")}
    model_key = next(p.name for p in (cache / "model").glob("*.nc"))
    assert after[model_key] == before[model_key]  # not recomputed
    assert len(after) == 3  # wide's new trace has its own
    Project(variants_dir).clean(keep=1)
    assert len(list(cache.rglob("*.nc"))) == 2  # the pruned trace's went with it


def test_psis_loo_of_a_block_is_arviz_stats_loo_to_the_last_bit(monkeypatch):
    """The chunk's reduction: arviz_stats' psislw per row, its two log-sum-exps over the
    draws for all rows at once; the very numbers of its own loo, row by row."""
    import xarray as xr

    rng = np.random.default_rng(4)
    chains, draws, rows = 2, 150, 300
    # Heavy tails in some rows, so Pareto k spans good and bad values.
    log_lik = rng.normal(-2, 1, (chains * draws, rows))
    log_lik[:, :40] += 3 * rng.standard_t(1.5, (chains * draws, 40))
    block = xr.DataArray(log_lik.reshape(chains, draws, rows), dims=("chain", "draw", "obs"))
    expected = block.azstats.loo(sample_dims=("chain", "draw"), r_eff=0.83)
    for values in (loo.PSIS_VALUES, 7 * chains * draws):  # in one slice, and in 43 of 7 rows
        monkeypatch.setattr(loo, "PSIS_VALUES", values)
        got = loo.psis_loo(log_lik.copy(), 0.83)
        for ours, theirs in zip(got, expected, strict=True):
            np.testing.assert_array_equal(ours, theirs.to_numpy())
    assert (expected[1] > 0.7).any() and (expected[1] < 0.5).any()
