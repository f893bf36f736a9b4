"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ 0 + a + x + (1 + x || g) + (1 | g:k) + (1 | h)

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order) gets no coefficient, each other level's is its difference from it (with
the data it was written for: a -> 'a1').

Each group term is centred (u ~ Normal(0, sigma)) when each level's data say more about
its effect than the population distribution does, and non-centred (u = z * sigma, the
cure for divergences when a group SD is small) when they may not; the comment above it
says which and why, with the numbers, and how to flip it. Priors are weakly informative
and scaled from the data, as commented beside each; change them on their lines.
"""

import pandas as pd
import pymc as pm


def build(data):
    """The model of y on a, x, with effects varying by g, g:k, h."""
    y = data["y"].to_numpy(dtype=float)
    a_idx, a_levels = pd.factorize(data["a"], sort=True)
    if (a_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[a_idx < 0].tolist()
        raise ValueError(f"column 'a' is empty at rows {rows}; drop or fill them in data.py")
    x = data["x"].to_numpy(dtype=float)
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    g_by_k_idx, g_by_k_levels = pd.factorize(
        (data["g"].astype(str) + ":" + data["k"].astype(str)).where(
            data[["g", "k"]].notna().all(axis=1)
        ),
        sort=True,
    )
    if (g_by_k_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_by_k_idx < 0].tolist()
        raise ValueError(
            f"columns 'g' or 'k' are empty at rows {rows}; drop or fill them in data.py"
        )
    h_idx, h_levels = pd.factorize(data["h"], sort=True)
    if (h_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[h_idx < 0].tolist()
        raise ValueError(f"column 'h' is empty at rows {rows}; drop or fill them in data.py")
    coords = {
        "obs": data.index.to_numpy(),
        "a": [str(v) for v in a_levels],
        "g": [str(v) for v in g_levels],
        "g_by_k": [str(v) for v in g_by_k_levels],
        "h": [str(v) for v in h_levels],
    }
    # Prior scales from the data, as rstanarm's defaults: computed from the 480 rows this
    # file was written for by the expression beside each, and written as numbers so that new
    # data values reuse the compiled model. If the data change much (`mlm run` warns at a
    # factor of 2), put the new values here or write this file anew: mlm generate model
    # --formula ... --force.
    y_sd = 1.395  # y.std(): the outcome's SD
    y_mean = 1.732  # y.mean(): the outcome's mean
    x_sd = 0.9554  # x.std()

    with pm.Model(coords=coords) as model:
        a_ = pm.Data("a_idx", a_idx, dims="obs")
        x_ = pm.Data("x", x, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        g_by_k_ = pm.Data("g_by_k_idx", g_by_k_idx, dims="obs")
        h_ = pm.Data("h_idx", h_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # b_a: the mean outcome at each level of a, weakly informative.
        b_a = pm.Normal("b_a", mu=y_mean, sigma=5 * y_sd, dims="a")
        # b_x: weakly informative, 2.5 outcome SDs per SD of x (rstanarm's default scale).
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x_sd)

        # (1 | g): an intercept per level of g, centred: each level's data say more about its
        # effect than the population distribution does (expected information per level, n
        # sigma_g^2 / sigma^2: intercept 4.2, at least 2; the lower end of its 90 % interval is
        # >= 1; from a one-way ANOVA by g (24 levels, median 20 rows, 3 means of g:k) of the
        # response adjusted for a, x and h, F = 5.24 on 23 and 48 df), so the centred form
        # samples best. The SD's half-normal prior has the scale of the outcome's SD.
        # Where they are not, non-centre it: z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g") and
        # u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g"), in place of the line below.
        sigma_g = pm.HalfNormal("sigma_g", sigma=y_sd)
        u_g = pm.Normal("u_g", mu=0, sigma=sigma_g, dims="g")

        # (0 + x || g): a slope on x per level of g, non-centred: a level's data may say less
        # about its effect than the population distribution does (expected information per
        # level, n sigma_g^2 / sigma^2: slope on x 1.8, at least 0.78; a lower end of a 90 %
        # interval is below 1; from a one-way ANOVA by g (24 levels, median 20 rows, 3 means of
        # g:k) of the response adjusted for a, x and h, F = 5.24 on 23 and 48 df), so sigma_g's
        # posterior reaches where the centred form funnels; the non-centred form samples well
        # there. The SD's half-normal prior has the scale of the outcome's SD per SD of x.
        # Where each level's data are informative, centre it: u_g_x = pm.Normal("u_g_x", mu=0,
        # sigma=sigma_g_x, dims="g"), in place of the two lines below.
        sigma_g_x = pm.HalfNormal("sigma_g_x", sigma=y_sd / x_sd)
        z_g_x = pm.Normal("z_g_x", mu=0, sigma=1, dims="g")
        u_g_x = pm.Deterministic("u_g_x", z_g_x * sigma_g_x, dims="g")

        # (1 | g:k): an intercept per level of g:k, non-centred: a level's data may say less
        # about its effect than the population distribution does (expected information per
        # level, n sigma_g^2 / sigma^2: intercept 0.79, at least 0.37; a lower end of a 90 %
        # interval is below 1; from a one-way ANOVA by g:k (72 levels, median 7 rows) of the
        # response adjusted for a, x, g and h, F = 2.11 on 48 and 398 df), so sigma_g's
        # posterior reaches where the centred form funnels; the non-centred form samples well
        # there. The SD's half-normal prior has the scale of the outcome's SD.
        # Where each level's data are informative, centre it: u_g_by_k = pm.Normal("u_g_by_k",
        # mu=0, sigma=sigma_g_by_k, dims="g_by_k"), in place of the two lines below.
        sigma_g_by_k = pm.HalfNormal("sigma_g_by_k", sigma=y_sd)
        z_g_by_k = pm.Normal("z_g_by_k", mu=0, sigma=1, dims="g_by_k")
        u_g_by_k = pm.Deterministic("u_g_by_k", z_g_by_k * sigma_g_by_k, dims="g_by_k")

        # (1 | h): an intercept per level of h, centred: each level's data say more about its
        # effect than the population distribution does (expected information per level, n
        # sigma_g^2 / sigma^2: intercept 4.6, at least 1.7; the lower end of its 90 % interval
        # is >= 1; from a one-way ANOVA by h (8 levels, median 60.5 rows) of the response
        # adjusted for a, x, g and g:k, F = 5.54 on 7 and 375 df), so the centred form samples
        # best. The SD's half-normal prior has the scale of the outcome's SD.
        # Where they are not, non-centre it: z_h = pm.Normal("z_h", mu=0, sigma=1, dims="h") and
        # u_h = pm.Deterministic("u_h", z_h * sigma_h, dims="h"), in place of the line below.
        sigma_h = pm.HalfNormal("sigma_h", sigma=y_sd)
        u_h = pm.Normal("u_h", mu=0, sigma=sigma_h, dims="h")

        # The residual SD; its prior mean is the outcome's SD.
        sigma = pm.Exponential("sigma", lam=1 / y_sd)
        mu = b_a[a_] + b_x * x_ + u_g[g_] + u_g_x[g_] * x_ + u_g_by_k[g_by_k_] + u_h[h_]
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
