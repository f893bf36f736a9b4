"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ x + (1 + x | g)

family student_t. It is plain PyMC and yours to edit: mlm never rewrites it.

Each group term is centred (u ~ Normal(0, sigma)) when each level's data say more about
its effect than the population distribution does, and non-centred (u = z * sigma, the
cure for divergences when a group SD is small) when they may not; the comment above it
says which and why, with the numbers, and how to flip it. Priors are weakly informative
and scaled from the data, as commented beside each; change them on their lines.

Priors set by --prior (the others are mlm's defaults, commented beside each):

    b_x=StudentT(3, 0, sigma=2.5)
    sigma_g=Exponential(1)
    sigma=pm.HalfCauchy(beta=1)
    nu=Gamma(mu=10, sigma=5)
"""

import pandas as pd
import pymc as pm


def build(data):
    """The model of y on x, with effects varying by g."""
    y = data["y"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    coords = {
        "obs": data.index.to_numpy(),
        "g": [str(v) for v in g_levels],
        "g_effect": ["Intercept", "x"],
        "g_effect_corr": ["Intercept", "x"],
    }
    # Prior scales from the data, as rstanarm's defaults: computed from the 480 rows this
    # file was written for by the expression beside each, and written as numbers so that new
    # data values reuse the compiled model. If the data change much (`mlm run` warns at a
    # factor of 2), put the new values here or write this file anew: mlm generate model
    # --formula ... --force.
    y_mean = 1.732  # y.mean(): the outcome's mean
    y_sd = 1.395  # y.std(): the outcome's SD

    with pm.Model(coords=coords) as model:
        x_ = pm.Data("x", x, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: the outcome when every predictor is 0 (and at reference levels); wide, as 0
        # may lie far from the data.
        intercept = pm.Normal("Intercept", mu=y_mean, sigma=5 * y_sd)
        # b_x: set by --prior 'b_x=StudentT(3, 0, sigma=2.5)'.
        # (mlm's default: Normal(mu=0, sigma=2.5 * y_sd / x.std()).)
        b_x = pm.StudentT("b_x", nu=3, mu=0, sigma=2.5)

        # (1 + x | g): an intercept and a slope on x per level of g, correlated, non-centred: a
        # level's data may say less about its effect than the population distribution does
        # (expected information per level, n sigma_g^2 / sigma^2: intercept 7, at least 4.2;
        # slope on x 0.93, at least 0.24; a lower end of a 90 % interval is below 1; from a one-
        # way ANOVA by g (24 levels, median 20 rows) of the response adjusted for x, F = 8 on 23
        # and 455 df), so sigma_g's posterior reaches where the centred form funnels; the non-
        # centred form samples well there: u = z @ chol.T. The covariance is an LKJ(2)
        # correlation (mildly favouring small correlations) and SDs with the prior set by
        # --prior 'sigma_g=Exponential(1)' (mlm's default: HalfNormal(sigma=[y_sd, y_sd /
        # x.std()])).
        # Where each level's data are informative, centre it: u_g = pm.MvNormal("u_g", mu=0,
        # chol=chol_g, dims=("g", "g_effect")), in place of z_g.
        chol_g, corr_g, sd_g = pm.LKJCholeskyCov(
            "chol_g",
            n=2,
            eta=2.0,
            sd_dist=pm.Exponential.dist(lam=1, shape=2),
            compute_corr=True,
            store_in_trace=False,
        )
        z_g = pm.Normal("z_g", mu=0, sigma=1, dims=("g", "g_effect"))
        u_g = pm.Deterministic("u_g", z_g @ chol_g.T, dims=("g", "g_effect"))
        pm.Deterministic("sigma_g", sd_g, dims="g_effect")
        pm.Deterministic("corr_g", corr_g, dims=("g_effect", "g_effect_corr"))

        # sigma: set by --prior 'sigma=pm.HalfCauchy(beta=1)'.
        # (mlm's default: Exponential(lam=1 / y_sd).)
        sigma = pm.HalfCauchy("sigma", beta=1)
        # nu: set by --prior 'nu=Gamma(mu=10, sigma=5)'.
        # (mlm's default: Gamma(alpha=2, beta=0.1).)
        nu = pm.Gamma("nu", mu=10, sigma=5)
        mu = intercept + b_x * x_ + u_g[g_, 0] + u_g[g_, 1] * x_
        pm.StudentT("y", nu=nu, mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
