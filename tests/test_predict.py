"""mlm.predict: predictions for new rows and new groups, and comparisons, from a fitted trace.

Every model here is sampled for real (few draws). The statistical checks are exact given
the posterior draws: each prediction is a fresh draw given one posterior draw, so after
subtracting its closed-form mean and dividing by its closed-form SD (both computed from
that posterior draw) the results are independent standard normals, however
autocorrelated the chains. Each test's statistics share a false-alarm rate of 0.1%
(Bonferroni), so a test fails by chance once in a thousand runs at most; a wrong
variance (a new group's effect left out, effects drawn independently instead of jointly)
moves the statistics by tens of standard errors.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from mlm.errors import MlmError
from mlm.predict import compare, predict, summary

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
TEMPLATE_MODEL = REPO / "project_template" / "{{cookiecutter.project_slug}}" / "model.py"
EXAMPLE = REPO / "example_project"
FALSE_ALARM = 0.001


def load(path: Path, name: str):
    """A module from a file, under a name of its own (model.py and data.py recur)."""
    spec = importlib.util.spec_from_file_location(f"mlm_test_predict_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fit(model, seed: int, draws: int = 500):
    with model:
        return pm.sample(draws=draws, tune=500, chains=2, random_seed=seed, progressbar=False)


def flat(array) -> np.ndarray:
    """Draws (chain, draw, ...) as (sample, ...)."""
    array = np.asarray(array)
    return array.reshape((-1, *array.shape[2:]))


def assert_standard_normal(*samples: np.ndarray, rate: float = FALSE_ALARM) -> None:
    """Each array holds independent N(0, 1) values: its mean is 0 and its mean square 1.

    2 statistics per array, each a z-score (the mean square's through its chi-square
    variance 2/n); all of them share the false-alarm rate.
    """
    limit = stats.norm.isf(rate / (2 * 2 * len(samples)))
    for values in samples:
        values = np.asarray(values, dtype=float).ravel()
        n = values.size
        z_mean = values.mean() * np.sqrt(n)
        z_square = (np.mean(values**2) - 1) / np.sqrt(2 / n)
        assert abs(z_mean) < limit, f"mean {values.mean():.4f} is {z_mean:.1f} SE from 0"
        assert abs(z_square) < limit, f"mean square {np.mean(values**2):.4f}: {z_square:.1f} SE"


def schools(seed: int = 3, n_schools: int = 12, pupils: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat([f"S{i:02d}" for i in range(n_schools)], pupils)
    hours = rng.uniform(0, 10, school.size).round(2)
    effect = rng.normal(0, 6, n_schools)[np.repeat(np.arange(n_schools), pupils)]
    score = 50 + 2 * hours + effect + rng.normal(0, 4, school.size)
    return pd.DataFrame({"school": school, "hours": hours, "score": score.round(2)})


@pytest.fixture(scope="module")
def template():
    """The template's varying-intercept model, its data and its trace."""
    build = load(TEMPLATE_MODEL, "template").build
    data = schools()
    return build, data, fit(build(data), seed=11)


def posterior(idata):
    return idata["posterior"].to_dataset()


def test_new_group_matches_closed_form(template):
    """A new school's pupil: mean b0 + x*b, variance sigma_u^2 + sigma^2 per posterior draw.

    Over the posterior this is the closed form of the issue: predictive mean mean(b0 + x*b),
    variance mean(sigma_u^2 + sigma^2) plus var(b0 + x*b), the parameter uncertainty.
    """
    build, data, idata = template
    hours = np.linspace(0, 10, 20)
    newdata = pd.DataFrame({"school": [f"new{i}" for i in range(20)], "hours": hours})
    draws = predict(build, data, newdata, idata, kind="response", seed=1)
    assert draws.dims == ("chain", "draw", "row")
    assert draws.shape == (2, 500, 20)
    post = posterior(idata)
    b0, b, sigma_u, sigma = (
        flat(post[v])[:, None] for v in ("intercept", "slope", "sigma_school", "sigma")
    )
    mean = b0 + b * hours
    sd = np.sqrt(sigma_u**2 + sigma**2)
    assert_standard_normal((flat(draws) - mean) / sd)
    # The marginal closed form, within 4 Monte Carlo SEs (implied by the exact check above).
    y = flat(draws)
    assert abs(y.mean() - mean.mean()) < 4 * np.sqrt(np.mean(sd**2) / y.size + mean.var() / 1000)


def test_seen_and_new_levels_in_one_call(template):
    """A seen school keeps its posterior effect; a new school gets one draw per posterior
    draw, shared by its rows; two new schools get different draws."""
    build, data, idata = template
    newdata = pd.DataFrame(
        {"school": ["S03", "new", "new", "other"], "hours": [2.0, 2.0, 5.0, 2.0]},
        index=["a", "b", "c", "d"],
    )
    draws = predict(build, data, newdata, idata, kind="mean", seed=2)
    assert list(draws.coords["row"].values) == ["a", "b", "c", "d"]
    post = posterior(idata)
    b0, b, sigma_u = (flat(post[v]) for v in ("intercept", "slope", "sigma_school"))
    seen = b0 + flat(post["school_effect"].sel(school="S03")) + b * 2.0
    m = flat(draws)
    np.testing.assert_allclose(m[:, 0], seen, rtol=1e-9)
    np.testing.assert_allclose(m[:, 2] - m[:, 1], 3.0 * b, rtol=1e-9)
    assert not np.allclose(m[:, 1], m[:, 3])
    assert_standard_normal((m[:, 1] - b0 - 2 * b) / sigma_u, (m[:, 3] - b0 - 2 * b) / sigma_u)


def test_training_rows_match_posterior_predictive(template):
    """On the training rows: the mean is the model's mu draw by draw, and new observations
    have pm.sample_posterior_predictive's distribution (their difference is N(0, 2 sigma^2))."""
    build, data, idata = template
    mean = predict(build, data, data, idata, kind="mean")
    post = posterior(idata)
    school = post["school_effect"].sel(school=xr_labels(data["school"]))
    mu = post["intercept"] + school + post["slope"] * xr_labels(data["hours"])
    np.testing.assert_allclose(flat(mean), flat(mu.transpose("chain", "draw", "row")), rtol=1e-9)

    ours = predict(build, data, data, idata, kind="response", seed=3)
    model = build(data)
    with model:
        theirs = pm.sample_posterior_predictive(idata, random_seed=4, progressbar=False)
    theirs = theirs["posterior_predictive"]["score"].to_numpy()
    sigma = flat(post["sigma"])[:, None]
    assert_standard_normal((flat(ours) - flat(theirs)) / (np.sqrt(2) * sigma))


def xr_labels(column: pd.Series):
    """A column as an indexer along dim `row`."""
    import xarray as xr

    return xr.DataArray(column.to_numpy(), dims="row")


def test_comparison_of_linear_model_is_the_coefficient(template):
    """One more hour changes the expected score by the slope, draw by draw: over the data,
    within each school, and for new schools (whose shared draws cancel)."""
    build, data, idata = template
    slope = flat(posterior(idata)["slope"])
    overall = compare(build, data, idata, "hours", values=(0, 1))
    assert overall.dims == ("chain", "draw")
    np.testing.assert_allclose(flat(overall), slope, rtol=1e-8)
    by = compare(build, data, idata, "hours", values=(2, 3), by="school")
    assert by.dims == ("chain", "draw", "school")
    np.testing.assert_allclose(flat(by), np.repeat(slope[:, None], 12, axis=1), rtol=1e-8)
    newdata = pd.DataFrame({"school": ["new1", "new2"], "hours": [1.0, 4.0]})
    new = compare(build, data, idata, "hours", values=(0, 1), newdata=newdata, seed=5)
    np.testing.assert_allclose(flat(new), slope, rtol=1e-8)

    table = summary(by)
    assert list(table.columns) == ["school", "mean", "sd", "q2.5", "q97.5"]
    assert len(table) == 12
    np.testing.assert_allclose(table["mean"], slope.mean(), rtol=1e-8)
    one = summary(overall, prob=0.9)
    assert list(one.columns) == ["mean", "sd", "q5", "q95"]
    assert one.loc[0, "q5"] < one.loc[0, "mean"] < one.loc[0, "q95"]


def test_summary_of_predictions_has_one_line_per_row(template):
    build, data, idata = template
    newdata = pd.DataFrame({"school": ["S01", "new"], "hours": [3.0, 3.0]}, index=[10, 11])
    table = summary(predict(build, data, newdata, idata, kind="response", seed=6))
    assert list(table.columns) == ["row", "mean", "sd", "q2.5", "q97.5"]
    assert list(table["row"]) == [10, 11]
    # A new school's pupil is less certain than a seen school's.
    assert table.loc[1, "sd"] > table.loc[0, "sd"]


@pytest.fixture(scope="module")
def bambi_fit():
    """Bambi's fit of y ~ x + (1 | g), its predictions for a new group and a seen one, and
    its posterior in the names of the model mlm's formula front end writes for the formula.

    One chain: bambi picks the fitted group a new group borrows per draw index, the same
    pick in every chain, which would tie the chains' predictions together.
    """
    import bambi as bmb
    import xarray as xr

    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=g.size).round(3)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, 10)[g] + rng.normal(0, 0.6, g.size)
    data = pd.DataFrame({"y": y.round(3), "x": x, "g": [f"s{v}" for v in g]})
    model = bmb.Model("y ~ x + (1 | g)", data)
    idata = model.fit(draws=2000, tune=500, chains=1, random_seed=9, progressbar=False)
    # Bambi gives every new group of one call the same draws: one new group per call.
    newdata = pd.DataFrame({"x": [0.3, -1.0], "g": ["new", "s2"]})
    with pytest.warns(FutureWarning, match="sample_new_groups"):
        theirs = model.predict(
            idata,
            kind="response",
            data=newdata,
            sample_new_groups=True,
            inplace=False,
            random_seed=10,
        )
    post = idata["posterior"].to_dataset().rename({"g__factor_dim": "g"})
    ours = xr.Dataset(
        {
            "Intercept": post["Intercept"],
            "b_x": post["x"],
            "sigma_g": post["1|g_sigma"],
            "z_g": post["1|g"] / post["1|g_sigma"],
            # The golden model centres g's intercepts on the intercept (g's levels hold many
            # rows each where it was written): a_g = Intercept + u_g.
            "a_g": post["Intercept"] + post["1|g"],
            "sigma": post["sigma"],
        }
    )
    return data, newdata, ours, theirs["posterior_predictive"]["y"].to_numpy()


def assert_zero_mean_unit_variance(*samples: np.ndarray, rate: float = FALSE_ALARM) -> None:
    """As assert_standard_normal, for independent values of any distribution with mean 0
    and variance 1: the mean square's SE is estimated from the values (large n)."""
    limit = stats.norm.isf(rate / (2 * 2 * len(samples)))
    for values in samples:
        values = np.asarray(values, dtype=float).ravel()
        n = values.size
        z_mean = values.mean() * np.sqrt(n)
        z_square = (np.mean(values**2) - 1) / (np.std(values**2, ddof=1) / np.sqrt(n))
        assert abs(z_mean) < limit, f"mean {values.mean():.4f} is {z_mean:.1f} SE from 0"
        assert abs(z_square) < limit, f"mean square {np.mean(values**2):.4f}: {z_square:.1f} SE"


def test_new_groups_agree_with_bambi(bambi_fit):
    """Bambi 0.21's sample_new_groups is brms' sample_new_levels="uncertainty": a new group
    borrows, in each draw, the effect of a fitted group picked at random. From the same
    posterior draws, mlm's new_levels="uncertainty" and bambi's predictions are then two
    independent draws of one distribution: their difference has mean 0 and variance
    2 (sigma^2 + the spread of the fitted effects in that draw) for the new group, and
    2 sigma^2 for a seen one."""
    data, newdata, post, theirs = bambi_fit
    build = load(GOLDEN / "intercept_slope.py", "intercept_slope").build
    ours = predict(build, data, newdata, post, kind="response", seed=11, new_levels="uncertainty")
    u = flat(post["z_g"] * post["sigma_g"])
    sigma = flat(post["sigma"])
    difference = flat(ours) - flat(theirs)
    new_sd = np.sqrt(2 * (sigma**2 + u.var(axis=1)))
    assert_zero_mean_unit_variance(
        difference[:, 0] / new_sd, difference[:, 1] / (np.sqrt(2) * sigma)
    )

    # The default (brms' "gaussian") draws the new group from N(0, sigma_g) instead, a
    # different distribution: test_new_group_matches_closed_form tests it against its
    # closed form (a ratio of its SD to bambi's has no calibrated bound).


@pytest.fixture(scope="module")
def correlated():
    """The formula front end's (1 + x | g) model on data with strongly correlated effects."""
    rng = np.random.default_rng(12)
    n_groups, per = 30, 10
    g = np.repeat(np.arange(n_groups), per)
    x = rng.normal(size=g.size)
    cov = np.array([[1.0, 0.8 * 0.6], [0.8 * 0.6, 0.36]])
    u = rng.multivariate_normal([0, 0], cov, n_groups)
    y = 1 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 0.5, g.size)
    data = pd.DataFrame({"y": y.round(4), "x": x.round(4), "g": g})
    build = load(GOLDEN / "correlated.py", "correlated").build
    return build, data, fit(build(data), seed=13)


def test_correlated_effects_draw_jointly(correlated):
    """A new group's (intercept, slope) is one draw from N(0, Sigma) per posterior draw,
    Sigma from that draw's SDs and correlation: whitened by Sigma's Cholesky factor, the
    pairs are independent standard normals (drawn independently, their cross term would
    miss the fitted correlation by tens of SEs)."""
    build, data, idata = correlated
    n = 60
    newdata = pd.DataFrame(
        {"x": np.tile([0.0, 1.0], n), "g": np.repeat([f"new{i}" for i in range(n)], 2)}
    )
    m = flat(predict(build, data, newdata, idata, kind="mean", seed=14))
    post = posterior(idata)
    b0, bx = flat(post["Intercept"])[:, None], flat(post["b_x"])[:, None]
    u0 = m[:, 0::2] - b0
    u1 = m[:, 1::2] - m[:, 0::2] - bx
    sd = flat(post["sigma_g"])
    corr = flat(post["corr_g"])[:, 0, 1]
    assert np.mean(corr) > 0.3  # the fit found the correlation this test is about
    # Whitening by the Cholesky factor of [[s0^2, r s0 s1], [r s0 s1, s1^2]].
    w0 = u0 / sd[:, :1]
    w1 = (u1 / sd[:, 1:] - corr[:, None] * w0) / np.sqrt(1 - corr[:, None] ** 2)
    cross = w0 * w1  # mean 0, variance 1 when independent standard normals
    limit = stats.norm.isf(FALSE_ALARM / (2 * 5))
    assert abs(cross.mean() * np.sqrt(cross.size)) < limit
    assert_standard_normal(w0, w1, rate=FALSE_ALARM * 4 / 5)


@pytest.fixture(scope="module")
def example():
    """example_project's model, data and trace."""
    data = load(EXAMPLE / "data.py", "example_data").load()
    build = load(EXAMPLE / "model.py", "example_model").build
    return build, data, fit(build(data), seed=15)


def test_example_new_therapy_group_vs_control(example):
    """A control patient expects b0; a patient in a new therapy group b0 + b1 + u, u drawn
    from N(0, sigma_u); their outcomes add sigma_e of their arm."""
    build, data, idata = example
    newdata = pd.DataFrame({"condition": ["control", "treated"], "group": [1000, 1001]})
    post = posterior(idata)
    b0, b1, sigma_u = (flat(post[v]) for v in ("b0", "b1", "sigma_u"))
    sigma_e = flat(post["sigma_e"])
    m = flat(predict(build, data, newdata, idata, kind="mean", seed=16))
    np.testing.assert_allclose(m[:, 0], b0, rtol=1e-9)
    y = flat(predict(build, data, newdata, idata, kind="response", seed=17))
    treated_sd = np.sqrt(sigma_u**2 + sigma_e[:, 1] ** 2)
    assert_standard_normal(
        (m[:, 1] - b0 - b1) / sigma_u,
        (y[:, 0] - b0) / sigma_e[:, 0],
        (y[:, 1] - b0 - b1) / treated_sd,
    )


def test_example_comparison_of_arms(example):
    """Treating every trial subject: b1 plus the mean group effect over the rows, where the
    controls (each in a group of their own) join new therapy groups, the treated keep theirs."""
    build, data, idata = example
    post = posterior(idata)
    b1, sigma_u = flat(post["b1"]), flat(post["sigma_u"])
    treated = (data["condition"] == "treated").to_numpy()
    u = post["u"].sel(group=xr_labels(data.loc[treated, "group"].astype(str)))
    seen = flat(u.transpose("chain", "draw", "row")).mean(axis=1)
    by = compare(build, data, idata, "condition", ("control", "treated"), by="condition", seed=18)
    assert list(by.coords["condition"].values) == ["control", "treated"]
    c = flat(by)
    np.testing.assert_allclose(c[:, 1], b1 + seen, rtol=1e-8)
    n_control = int((~treated).sum())
    assert_standard_normal((c[:, 0] - b1) / (sigma_u / np.sqrt(n_control)))
    overall = flat(compare(build, data, idata, "condition", ("control", "treated"), seed=18))
    np.testing.assert_allclose(overall, c.mean(axis=1), rtol=1e-8)  # equal arms of 100


# --- Models that cannot be predicted: one clear error each --------------------------------


def tiny(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(["a", "b", "c"], 5)
    return pd.DataFrame(
        {"y": rng.normal(size=15).round(3), "x": rng.normal(size=15).round(3), "g": g}
    )


def prior_trace(model):
    """Draws of every free variable (from the prior: enough to test errors), as a trace."""
    import xarray as xr

    with model:
        draws = pm.sample_prior_predictive(draws=20, random_seed=0)
    return xr.DataTree.from_dict({"posterior": draws["prior"].to_dataset()})


def good(data):
    g_idx, levels = pd.factorize(data["g"], sort=True)
    with pm.Model(coords={"g": list(levels), "obs": data.index.to_numpy()}) as model:
        x = pm.Data("x", data["x"].to_numpy(), dims="obs")
        g = pm.Data("g_idx", g_idx, dims="obs")
        sigma_g = pm.HalfNormal("sigma_g")
        u = pm.Deterministic("u", pm.Normal("z", dims="g") * sigma_g, dims="g")
        b = pm.Normal("b")
        pm.Normal("y", u[g] + b * x, 1, observed=data["y"].to_numpy(), dims="obs")
    return model


TRAINING = tiny()


def ignores_data(data):
    """Predictors from a global: the model always has the training rows."""
    return good(TRAINING)


def no_dims(data):
    g_idx, levels = pd.factorize(data["g"], sort=True)
    with pm.Model(coords={"g": list(levels)}) as model:
        u = pm.Normal("u", 0, pm.HalfNormal("sigma_g"), dims="g")
        pm.Normal("y", u[g_idx] + pm.Normal("b") * data["x"].to_numpy(), 1, observed=data["y"])
    return model


def fixed_coords(data):
    """Coords written out, indices from the data: a new level shifts the indices."""
    g_idx, _ = pd.factorize(data["g"], sort=True)
    with pm.Model(coords={"g": ["a", "b", "c"], "obs": data.index.to_numpy()}) as model:
        u = pm.Normal("u", 0, pm.HalfNormal("sigma_g"), dims="g")
        pm.Normal(
            "y", u[g_idx] + pm.Normal("b") * data["x"].to_numpy(), 1, observed=data["y"], dims="obs"
        )
    return model


def fails_on_new(data):
    if len(data) > len(TRAINING):
        raise ValueError("expected 15 rows")
    return good(data)


def fixed_factor(data):
    """g as a fixed effect: one coefficient per level, from a fixed prior."""
    g_idx, levels = pd.factorize(data["g"], sort=True)
    with pm.Model(coords={"g": list(levels), "obs": data.index.to_numpy()}) as model:
        b_g = pm.Normal("b_g", 0, 2, dims="g")
        pm.Normal("y", b_g[g_idx], 1, observed=data["y"].to_numpy(), dims="obs")
    return model


def standardizes(data):
    """x standardized by the data's own mean and SD: new rows would shift the scale."""
    frame = data.assign(x=(data["x"] - data["x"].mean()) / data["x"].std())
    return good(frame)


@pytest.mark.parametrize(
    ("build", "newdata", "message"),
    [
        (ignores_data, pd.DataFrame({"x": [0.0], "g": ["a"]}), "gives y 15 rows, not 15 + 1"),
        (no_dims, pd.DataFrame({"x": [0.0], "g": ["a"]}), "has no dims"),
        (fixed_coords, pd.DataFrame({"x": [0.0], "g": ["0"]}), "cannot predict"),
        (fails_on_new, pd.DataFrame({"x": [0.0], "g": ["a"]}), "build() failed"),
        (
            fixed_factor,
            pd.DataFrame({"x": [0.0], "g": ["new"]}),
            "never saw (g = new): b_g holds population-level (fixed) effects",
        ),
        (standardizes, pd.DataFrame({"x": [9.0], "g": ["a"]}), "changes the expected outcome"),
        (
            good,
            pd.DataFrame({"g": ["a"]}),
            "newdata lacks column(s) the model uses as predictors: x (in x)",
        ),
    ],
    ids=[
        "ignores-data",
        "no-dims",
        "fixed-coords",
        "build-fails",
        "fixed-factor",
        "standardizes",
        "missing-x",
    ],
)
def test_unpredictable_model_gets_one_clear_error(build, newdata, message):
    data = TRAINING
    idata = prior_trace(build(data))
    with pytest.raises(MlmError) as error:
        predict(build, data, newdata, idata, kind="mean", seed=0)
    assert message in str(error.value)
    if not message.startswith("newdata lacks"):
        assert "pm.Data" in str(error.value) or "group effect" in str(error.value)


def test_constant_predictors_from_data_work():
    """Predictors computed from `data` as plain arrays (not pm.Data) predict as well."""
    data = TRAINING

    def constants(data):
        g_idx, levels = pd.factorize(data["g"], sort=True)
        with pm.Model(coords={"g": list(levels), "obs": data.index.to_numpy()}) as model:
            sigma_g = pm.HalfNormal("sigma_g")
            u = pm.Deterministic("u", pm.Normal("z", dims="g") * sigma_g, dims="g")
            b = pm.Normal("b")
            mu = u[g_idx] + b * data["x"].to_numpy()
            pm.Normal("y", mu, 1, observed=data["y"].to_numpy(), dims="obs")
        return model

    idata = prior_trace(good(data))
    newdata = pd.DataFrame({"x": [0.5, -1.0], "g": ["b", "new"]})
    ours = predict(constants, data, newdata, idata, kind="mean", seed=1)
    reference = predict(good, data, newdata, idata, kind="mean", seed=1)
    np.testing.assert_allclose(ours[..., 0], reference[..., 0], rtol=1e-9)
    assert np.isfinite(ours).all()


# --- Every model the formula front end writes ----------------------------------------------


def formula_data(seed: int = 7, n_groups: int = 12, per_group: int = 8) -> pd.DataFrame:
    """Columns for every golden model (tests/golden): y, x, tx, a, b, g, h, k, yb, yc, yn,
    yg and yl (positive), yp (a proportion), yz (zero-inflated counts), and cbpp's
    incidence, size, period and herd."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    n = g.size
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": (1 + 0.5 * x + rng.normal(0, 0.7, n_groups)[g] + rng.normal(size=n)).round(4),
            "x": x.round(4),
            "tx": rng.integers(0, 2, n),
            "a": rng.choice(["a1", "a2", "a3"], n),
            "b": rng.choice(["hi", "lo"], n),
            "g": g,
            "h": rng.integers(0, 4, n),
            "k": rng.integers(0, 3, n),
            "yb": rng.integers(0, 2, n),
            "yc": rng.poisson(2.0, n),
            "yn": rng.negative_binomial(3, 0.5, n),
            "yg": rng.gamma(4.0, 0.5, n),
            "yl": rng.lognormal(1.0, 0.6, n),
            "yp": rng.beta(2.0, 3.0, n),
            "yz": np.where(rng.random(n) < 0.3, 0, rng.poisson(2.0, n)),
            "size": rng.integers(5, 20, n),
            "period": rng.integers(1, 5, n),
            "herd": np.repeat(np.arange(n // 4), 4)[:n],
        }
    ).assign(incidence=lambda f: rng.binomial(f["size"], 0.2))


GOLDEN_MODELS = sorted(path.stem for path in GOLDEN.glob("*.py"))


@pytest.mark.parametrize("name", GOLDEN_MODELS)
def test_formula_models_predict_seen_and_new_levels(name):
    """Each golden model predicts: a copy of a training row gets exactly that row's expected
    outcome (as PyMC computes it from the trace), whatever subset of a fixed factor's levels
    newdata holds (its reference level stays the data's); new groups of every grouping
    (crossed h, nested g:k, correlated g) get finite draws that vary."""
    build = load(GOLDEN / f"{name}.py", f"golden_{name}").build
    data = formula_data()
    model = build(data)
    idata = prior_trace(model)
    rows = [3, 40]
    outcomes = ["y", "yb", "yc", "yn", "yg", "yl", "yp", "yz", "incidence"]
    copies = data.drop(columns=outcomes).iloc[rows]
    if "a" in copies:
        copies["a"] = data["a"].iloc[rows].to_numpy()
    # New levels of every grouping; k is a grouping (nested g:k) unless the model has it as
    # a fixed factor (factor(k), i.k), whose new levels are rightly refused.
    source = (GOLDEN / f"{name}.py").read_text()
    fixed_k = 'pm.Normal("b_k' in source or "_by_k" in source
    new = {"g": [100, 101], "h": [50, 50], "herd": [900, 901]}
    if not fixed_k:
        new["k"] = [7, 7]
    fresh = copies.assign(**new).set_axis(["new0", "new1"])
    newdata = pd.concat([copies.set_axis(["seen0", "seen1"]), fresh])
    # Only the copies' levels of a and b (a subset): the coding must stay the data's.
    mean = flat(predict(build, data, newdata, idata, kind="mean", seed=1))
    response = flat(predict(build, data, newdata, idata, kind="response", seed=2))

    (observed,) = model.observed_RVs
    from pymc.distributions.moments.means import mean as expected

    with model:
        pm.Deterministic(
            "expected", expected(observed), dims=model.named_vars_to_dims[observed.name]
        )
        reference = pm.sample_posterior_predictive(
            idata, var_names=["expected"], random_seed=3, progressbar=False
        )
    reference = flat(reference["posterior_predictive"]["expected"])[:, rows]
    np.testing.assert_allclose(mean[:, :2], reference, rtol=1e-8)
    assert np.isfinite(mean).all() and np.isfinite(response).all()
    assert mean[:, 2:].std(axis=0).min() > 0
    if name == "bernoulli":
        assert set(np.unique(response)) <= {0, 1} and ((mean > 0) & (mean < 1)).all()
    if name in ("poisson", "zero_inflated_poisson", "zero_inflated_negbinomial"):
        assert (response >= 0).all() and (response == response.round()).all()
    if name in ("gamma", "lognormal"):
        assert (response >= 0).all() and (mean > 0).all()
    if name == "beta":
        assert ((response >= 0) & (response <= 1)).all() and ((mean > 0) & (mean < 1)).all()


def test_centred_effects_draw_new_levels_from_the_population():
    """u ~ Normal(0, sigma_g) written centred: a new level is a draw from N(0, sigma_g) given
    each draw's sigma_g, and a seen level keeps its draw (draws from the prior stand in for a
    posterior here: the check holds draw by draw)."""
    data = TRAINING

    def centred(data):
        g_idx, levels = pd.factorize(data["g"], sort=True)
        with pm.Model(coords={"g": list(levels), "obs": data.index.to_numpy()}) as model:
            x = pm.Data("x", data["x"].to_numpy(), dims="obs")
            g = pm.Data("g_idx", g_idx, dims="obs")
            u = pm.Normal("u", 0, pm.HalfNormal("sigma_g"), dims="g")
            pm.Normal("y", u[g] + pm.Normal("b") * x, 1, observed=data["y"].to_numpy(), dims="obs")
        return model

    import xarray as xr

    with centred(data):
        prior = pm.sample_prior_predictive(draws=4000, random_seed=5)["prior"].to_dataset()
    idata = xr.DataTree.from_dict({"posterior": prior})
    newdata = pd.DataFrame({"x": [0.0, 0.0], "g": ["b", "new"]})
    m = flat(predict(centred, data, newdata, idata, kind="mean", seed=6))
    np.testing.assert_allclose(m[:, 0], flat(prior["u"].sel(g="b")), rtol=1e-9)
    assert_standard_normal(m[:, 1] / flat(prior["sigma_g"]))
