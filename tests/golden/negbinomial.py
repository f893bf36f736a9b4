"""Model: build(data) returns the PyMC model.

Written by `mlm` from the Stata command

    menbreg yn x || g:

which lme4 writes as

    yn ~ x + (1 | g)

family negbinomial with a log link; theta is the negative binomial's shape, lme4's theta
(glmer.nb; Stata's menbreg reports alpha = 1 / theta). It is plain PyMC and yours to
edit: mlm never rewrites it.

Each group term is centred (u ~ Normal(0, sigma)) when each level's data say more about
its effect than the population distribution does, and non-centred (u = z * sigma, the
cure for divergences when a group SD is small) when they may not; the comment above it
says which and why, with the numbers, and how to flip it. Priors are weakly informative
and scaled from the data, as commented beside each; change them on their lines.
"""

import numpy as np
import pandas as pd
import pymc as pm


def build(data):
    """The model of yn on x, with effects varying by g."""
    y = data["yn"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    coords = {
        "obs": data.index.to_numpy(),
        "g": [str(v) for v in g_levels],
    }
    # Prior scales from the data, as rstanarm's defaults: computed from the 480 rows this
    # file was written for by the expression beside each, and written as numbers so that new
    # data values reuse the compiled model. If the data change much (`mlm run` warns at a
    # factor of 2), put the new values here or write this file anew: mlm generate model
    # --formula ... --force.
    y_mean = 4.042  # y.mean(): the outcome's mean
    x_sd = 0.9723  # x.std()

    with pm.Model(coords=coords) as model:
        x_ = pm.Data("x", x, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("yn_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: the log mean count when every predictor is 0, centred on the data's.
        intercept = pm.Normal("Intercept", mu=np.log(y_mean), sigma=2.5)
        # b_x: weakly informative, 2.5 units of the link per SD of x (rstanarm's default scale).
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 / x_sd)

        # (1 | g): an intercept per level of g, centred on the intercept (a_g ~
        # Normal(intercept, sigma_g)): each level's data say more about its effect than the
        # population distribution does (expected information per level, n sigma_g^2 / sigma^2,
        # sigma^2 the variance within levels on the response's scale: intercept 9.3, at least
        # 5.6; the lower end of its 90 % interval is >= 1; from a one-way ANOVA by g (24 levels,
        # median 20 rows) of the response adjusted for x, F = 10.3 on 23 and 455 df), so the
        # centred form samples best; on the intercept, it does not trade off against the mean of
        # u_g. The SD's half-normal prior has scale 1 on the link scale.
        # Where they are not, non-centre it: z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g") and
        # u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g"), in place of the two lines
        # below.
        sigma_g = pm.HalfNormal("sigma_g", sigma=1)
        a_g = pm.Normal("a_g", mu=intercept, sigma=sigma_g, dims="g")
        u_g = pm.Deterministic("u_g", a_g - intercept, dims="g")

        # theta: the negative binomial's shape (variance mu + mu^2 / theta, lme4's theta);
        # brms's default prior, wide from strong overdispersion to nearly Poisson.
        theta = pm.Gamma("theta", alpha=0.01, beta=0.01)
        eta = intercept + b_x * x_ + u_g[g_]
        pm.NegativeBinomial("yn", mu=pm.math.exp(eta), alpha=theta, observed=y_, dims="obs")

    return model
