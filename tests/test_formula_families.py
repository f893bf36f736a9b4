"""The positive, proportion and zero-inflated families (issue 19): gamma with a log link,
lognormal, beta with a logit link, and zero-inflated Poisson and negative binomial, as
brms's Gamma(link = "log"), lognormal(), Beta(), zero_inflated_poisson() and
zero_inflated_negbinomial() fit them.

Fast tests pin the generated code (golden files), the Stata spelling and the refusal of
impossible responses; the slow ones sample each family on simulated data with known
effects and compare the posterior with Bambi's, an independent implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_formula import build, simulate
from test_formula_data import check_golden

from mlm.codegen import model_source
from mlm.errors import MlmError
from mlm.formula import parse

# The truth the data are simulated from: intercept, slope of x, SD of g's intercepts.
TRUTH = {"Intercept": 1.0, "b_x": 0.5, "sigma_g": 0.5}
SHAPE, SIGMA, PHI, ZI = 4.0, 0.6, 10.0, 0.3
FAMILIES = {
    "gamma": "yg",
    "lognormal": "yl",
    "beta": "yp",
    "zero_inflated_poisson": "yz",
    "zero_inflated_negbinomial": "yz",
}


def positive(seed: int = 9, n_groups: int = 24, per_group: int = 20) -> pd.DataFrame:
    """x, g and one response per family: yg (gamma, shape 4), yl (lognormal, sigma 0.6),
    yp (beta, phi 10, its intercept -0.5) and yz (Poisson counts, 30 % of them replaced by
    structural zeros), all with slope 0.5 and g's SD 0.5."""
    frame = simulate(seed, n_groups, per_group)
    rng = np.random.default_rng(seed)
    eta = TRUTH["b_x"] * frame["x"] + rng.normal(0, TRUTH["sigma_g"], n_groups)[frame["g"]]
    mean = np.exp(TRUTH["Intercept"] + eta)
    frame["yg"] = rng.gamma(SHAPE, mean / SHAPE).round(4)
    frame["yl"] = np.exp(TRUTH["Intercept"] + eta + rng.normal(0, SIGMA, len(frame))).round(4)
    p = 1 / (1 + np.exp(-(-0.5 + eta)))
    frame["yp"] = rng.beta(p * PHI, (1 - p) * PHI).clip(1e-4, 1 - 1e-4).round(4)
    frame["yz"] = np.where(rng.random(len(frame)) < ZI, 0, rng.poisson(mean))
    return frame


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_writes_its_likelihood(family):
    frame = positive()
    source = model_source(parse(f"{FAMILIES[family]} ~ x + (1 | g)", family=family), frame)
    check_golden(family, source)
    line = {
        "gamma": 'pm.Gamma("yg", alpha=shape, beta=shape / pm.math.exp(eta), observed=y_',
        "lognormal": 'pm.LogNormal("yl", mu=mu, sigma=sigma, observed=y_',
        "beta": 'pm.Beta("yp", mu=pm.math.invlogit(eta), nu=phi, observed=y_',
        "zero_inflated_poisson": 'pm.ZeroInflatedPoisson("yz", psi=1 - zi, mu=pm.math.exp(eta)',
        "zero_inflated_negbinomial": "pm.ZeroInflatedNegativeBinomial(",
    }[family]
    assert line in source
    model = build(source, frame)
    own = {"gamma": "shape", "lognormal": "sigma", "beta": "phi"}.get(family, "zi")
    assert own in model.named_vars


def test_stata_meglm_gamma_is_the_lme4_gamma():
    lme4 = parse("yg ~ x + (1 | g)", family="gamma")
    assert parse("meglm yg x || g:, family(gamma) link(log)") == lme4
    assert parse("meglm yg x || g:, family(gamma)") == lme4  # log is meglm's default
    assert parse("meglm yn x || g:, family(nbinomial)") == parse("menbreg yn x || g:")
    assert parse("meglm y x || g:").family == "gaussian"
    with pytest.raises(MlmError, match=r"family\(gamma\) is fitted with link\(log\)"):
        parse("meglm yg x || g:, family(gamma) link(identity)")
    with pytest.raises(MlmError, match=r"meglm's family\(ordinal\) is not supported"):
        parse("meglm yg x || g:, family(ordinal)")
    with pytest.raises(MlmError, match="belongs to meglm"):
        parse("mixed yg x || g:, family(gamma)")
    with pytest.raises(MlmError, match="contradicts Stata's meglm"):
        parse("meglm yg x || g:, family(gamma)", family="lognormal")


@pytest.mark.parametrize(
    ("family", "value", "said"),
    [("gamma", 0.0, "> 0"), ("lognormal", -1.5, "> 0"), ("beta", 1.0, "strictly between 0 and 1")],
)
def test_an_impossible_response_is_refused_with_its_rows(family, value, said):
    frame = positive()
    column = FAMILIES[family]
    frame.loc[[3, 17], column] = value
    with pytest.raises(MlmError) as refused:
        model_source(parse(f"{column} ~ x + (1 | g)", family=family), frame)
    message = str(refused.value)
    assert f"family {family} needs {column!r} {said}" in message
    assert "at rows [3, 17]" in message
    # model.py written on good data refuses bad data in build(), naming the rows too.
    source = model_source(parse(f"{column} ~ x + (1 | g)", family=family), positive())
    with pytest.raises(ValueError, match=rf"column '{column}' must be .* rows \[3, 17\]"):
        build(source, frame)


def test_zero_inflation_takes_a_probability_prior_and_counts():
    frame = positive()
    source = model_source(
        parse("yz ~ x + (1 | g)", family="zero_inflated_poisson", priors=["zi=Beta(2, 8)"]),
        frame,
    )
    assert 'zi = pm.Beta("zi", alpha=2, beta=8)' in source
    with pytest.raises(MlmError, match="zi is a probability"):
        model_source(
            parse("yz ~ x", family="zero_inflated_poisson", priors=["zi=HalfNormal(1)"]), frame
        )
    frame["yz"] = frame["yz"].astype(float)
    frame.loc[5, "yz"] = 2.5
    with pytest.raises(
        MlmError, match=r"needs counts \(integers >= 0\) in 'yz'; it has 2.5 at row 5"
    ):
        model_source(parse("yz ~ x", family="zero_inflated_negbinomial"), frame)


def test_lognormal_takes_a_residual_scale_model_and_refuses_one_level_per_row():
    frame = positive()
    source = model_source(parse("yl ~ x + (1 | g)", sigma="~ b", family="lognormal"), frame)
    assert "log_sigma_b" in source and "pm.LogNormal(" in source
    with pytest.raises(MlmError, match="needs a family with a scale"):
        parse("yg ~ x", sigma="~ b", family="gamma")
    frame["row"] = np.arange(len(frame))
    with pytest.raises(MlmError, match="as many levels as the data have rows"):
        model_source(parse("yg ~ x + (1 | row)", family="gamma"), frame)


# Each family against Bambi: name -> (Bambi's family and link, our response, Bambi's
# response, our parameter -> Bambi's). Bambi has no lognormal family: a gaussian on log(y)
# has the same posterior (the Jacobian of log is a constant).
BAMBI = {
    "gamma": ("gamma", "log", "yg", "yg", {"shape": "alpha"}),
    "lognormal": ("gaussian", "identity", "yl", "np.log(yl)", {"sigma": "sigma"}),
    "beta": ("beta", "logit", "yp", "yp", {"phi": "kappa"}),
    # Bambi's psi is PyMC's, the probability of the Poisson part: our zi is 1 - psi.
    "zero_inflated_poisson": ("zero_inflated_poisson", "log", "yz", "yz", {"zi": "psi"}),
    # On Poisson data theta is barely bounded above: compared through zi and the effects.
    "zero_inflated_negbinomial": (
        "zero_inflated_negativebinomial",
        "log",
        "yz",
        "yz",
        {"zi": "psi"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("family", BAMBI)
def test_family_agrees_with_bambi_and_recovers_the_truth(family):
    bmb = pytest.importorskip("bambi")
    import pymc as pm
    from test_formula import assert_agree

    kind, link, ours_y, their_y, own = BAMBI[family]
    frame = positive()
    with build(model_source(parse(f"{ours_y} ~ x + (1 | g)", family=family), frame), frame):
        ours = pm.sample(draws=600, tune=600, chains=2, random_seed=3, progressbar=False)
    reference = bmb.Model(f"{their_y} ~ x + (1 | g)", frame, family=kind, link=link)
    theirs = reference.fit(
        draws=600, tune=600, chains=2, random_seed=4, inference_method="nutpie", progressbar=False
    )
    pairs = {"Intercept": "Intercept", "b_x": "x", "sigma_g": "1|g_sigma", **own}
    if family.startswith("zero_inflated"):
        posterior = theirs["posterior"].to_dataset()
        theirs["posterior"] = posterior.assign(psi=1 - posterior["psi"])
    assert_agree(ours, theirs, pairs, slack=0.2)
    posterior = ours["posterior"]
    truth = {**TRUTH, "Intercept": -0.5 if family == "beta" else 1.0}
    truth[next(iter(own))] = {"gamma": SHAPE, "lognormal": SIGMA, "beta": PHI}.get(family, ZI)
    for name, value in truth.items():
        draws = posterior[name].to_numpy().ravel()
        z = abs(draws.mean() - value) / draws.std()
        assert z < 3.5, (name, draws.mean(), value, z)
