"""Each family's generated likelihood, checked without golden files.

The generated model.py of every family is built and its observed variable's log density
is compared with scipy's at one point of the parameters: a student_t model written as a
Normal (or with nu and sigma swapped, or a logit link written as identity) fails here even
after the golden files are regenerated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from mlm.codegen import model_source
from mlm.formula import parse


def frame(seed: int = 3, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # x with mean 0 and 2 rows per group: the generated model then keeps x as it is and
    # non-centres the group term (u_g = z_g * sigma_g), the form this test computes.
    x = rng.normal(0, 1, n)
    x = x - x.mean()
    g = np.repeat(np.arange(n // 2), 2)
    return pd.DataFrame(
        {
            "y": (1 + 0.5 * x + rng.standard_t(4, n)).round(4),
            "yb": (rng.random(n) < special.expit(x)).astype(int),
            "yc": rng.poisson(np.exp(0.3 + 0.4 * x)),
            "yg": rng.gamma(3.0, np.exp(0.3 + 0.4 * x) / 3.0),
            "yl": np.exp(0.3 + 0.4 * x + rng.normal(0, 0.5, n)),
            "yp": rng.beta(2.0, 3.0, n),
            "yz": np.where(rng.random(n) < 0.3, 0, rng.poisson(np.exp(0.3 + 0.4 * x))),
            "x": x.round(4),
            "g": g,
        }
    )


def build(formula: str, family: str, data: pd.DataFrame):
    namespace: dict = {}
    exec(compile(model_source(parse(formula, family=family), data), "model.py", "exec"), namespace)
    return namespace["build"](data)


# family -> (formula, the likelihood's PyTensor op, scipy's log density of the data given
# the linear predictor eta and the point's parameters)
FAMILIES = {
    "gaussian": (
        "y ~ x + (1 | g)",
        "NormalRV",
        lambda y, eta, p: stats.norm.logpdf(y, eta, p["sigma"]),
    ),
    "student_t": (
        "y ~ x + (1 | g)",
        "StudentTRV",
        lambda y, eta, p: stats.t.logpdf(y, p["nu"], eta, p["sigma"]),
    ),
    "bernoulli": (
        "yb ~ x + (1 | g)",
        "BernoulliRV",
        lambda y, eta, p: stats.bernoulli.logpmf(y, special.expit(eta)),
    ),
    "poisson": (
        "yc ~ x + (1 | g)",
        "PoissonRV",
        lambda y, eta, p: stats.poisson.logpmf(y, np.exp(eta)),
    ),
    "gamma": (
        "yg ~ x + (1 | g)",
        "GammaRV",
        lambda y, eta, p: stats.gamma.logpdf(y, p["shape"], scale=np.exp(eta) / p["shape"]),
    ),
    "lognormal": (
        "yl ~ x + (1 | g)",
        "LogNormalRV",
        lambda y, eta, p: stats.lognorm.logpdf(y, p["sigma"], scale=np.exp(eta)),
    ),
    "beta": (
        "yp ~ x + (1 | g)",
        "BetaRV",
        lambda y, eta, p: stats.beta.logpdf(
            y, special.expit(eta) * p["phi"], (1 - special.expit(eta)) * p["phi"]
        ),
    ),
    # A mixture: zi of structural zeros, 1 - zi of the count distribution.
    "zero_inflated_poisson": (
        "yz ~ x + (1 | g)",
        "MixtureRV",
        lambda y, eta, p: np.log(
            p["zi"] * (y == 0) + (1 - p["zi"]) * stats.poisson.pmf(y, np.exp(eta))
        ),
    ),
    "zero_inflated_negbinomial": (
        "yz ~ x + (1 | g)",
        "MixtureRV",
        lambda y, eta, p: np.log(
            p["zi"] * (y == 0)
            + (1 - p["zi"])
            * stats.nbinom.pmf(y, p["theta"], p["theta"] / (p["theta"] + np.exp(eta)))
        ),
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_generated_likelihood_is_the_familys_own(family: str):
    formula, op, logpdf = FAMILIES[family]
    data = frame()
    model = build(formula, family, data)
    (observed,) = model.observed_RVs
    assert type(observed.owner.op).__name__ == op

    # One point away from the initial values, so that nu, sigma and the effects differ.
    names = {v.name for v in model.free_RVs}
    point = {}
    rng = np.random.default_rng(0)
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        shape = model.initial_point()[value.name].shape
        point[value.name] = rng.uniform(0.2, 1.5, size=shape)
    constrained = {
        "Intercept": point["Intercept"],
        "b_x": point["b_x"],
        "sigma_g": np.exp(point["sigma_g_log__"]),
        "z_g": point["z_g"],
    }
    if "sigma" in names:
        constrained["sigma"] = np.exp(point["sigma_log__"])
    for name in ("nu", "shape", "phi", "theta"):
        if name in names:
            constrained[name] = np.exp(point[f"{name}_log__"])
    if "zi" in names:
        constrained["zi"] = special.expit(point["zi_logodds__"])
    assert ("nu" in names) == (family == "student_t")
    assert ("sigma" in names) == (family in ("gaussian", "student_t", "lognormal"))
    assert ("zi" in names) == family.startswith("zero_inflated")

    g_idx, _ = pd.factorize(data["g"], sort=True)
    u_g = constrained["z_g"] * constrained["sigma_g"]
    eta = constrained["Intercept"] + constrained["b_x"] * data["x"].to_numpy() + u_g[g_idx]
    expected = logpdf(data[formula.split(" ~")[0]].to_numpy(), eta, constrained).sum()
    got = model.compile_logp(vars=[observed], sum=True)(point)
    assert got == pytest.approx(expected, rel=1e-6)
