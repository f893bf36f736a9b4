"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    yb ~ x + (1 | g)

family bernoulli with a logit link. It is plain PyMC and yours to edit: mlm never
rewrites it.

Each group term is centred (u ~ Normal(0, sigma)) when each level's data say more about
its effect than the population distribution does, and non-centred (u = z * sigma, the
cure for divergences when a group SD is small) when they may not; the comment above it
says which and why, with the numbers, and how to flip it. Priors are weakly informative
and scaled from the data, as commented beside each; change them on their lines.
"""

import pandas as pd
import pymc as pm


def build(data):
    """The model of yb on x, with effects varying by g."""
    y = data["yb"].to_numpy(dtype=float)
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
    x_sd = 0.9554  # x.std()

    with pm.Model(coords=coords) as model:
        x_ = pm.Data("x", x, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("yb_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: the log-odds when every predictor is 0; sd 2.5 spans probabilities 0.01 to
        # 0.99.
        intercept = pm.Normal("Intercept", mu=0, sigma=2.5)
        # b_x: weakly informative, 2.5 units of the link per SD of x (rstanarm's default scale).
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 / x_sd)

        # (1 | g): an intercept per level of g, non-centred: a level's data may say less about
        # its effect than the population distribution does (expected information per level, n
        # sigma_g^2 / sigma^2, sigma^2 the variance within levels on the response's scale:
        # intercept 0.57, at least 0.0087; a lower end of a 90 % interval is below 1; from a
        # one-way ANOVA by g (24 levels, median 20 rows) of the response adjusted for x, F =
        # 1.57 on 23 and 455 df), so sigma_g's posterior reaches where the centred form funnels;
        # the non-centred form samples well there. The SD's half-normal prior has scale 1 on the
        # link scale.
        # Where each level's data are informative, centre it: u_g = pm.Normal("u_g", mu=0,
        # sigma=sigma_g, dims="g"), in place of the two lines below.
        sigma_g = pm.HalfNormal("sigma_g", sigma=1)
        z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g")
        u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g")

        eta = intercept + b_x * x_ + u_g[g_]
        pm.Bernoulli("yb", logit_p=eta, observed=y_, dims="obs")

    return model
