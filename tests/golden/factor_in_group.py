"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ x + a + (1 + a | g) + (0 + b || h)

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order) gets no coefficient, each other level's is its difference from it (with
the data it was written for: a -> 'a1', b -> 'hi').

Each group term is centred (u ~ Normal(0, sigma)) when each level's data say more about
its effect than the population distribution does, and non-centred (u = z * sigma, the
cure for divergences when a group SD is small) when they may not; the comment above it
says which and why, with the numbers, and how to flip it. Priors are weakly informative
and scaled from the data, as commented beside each; change them on their lines.
"""

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt


def build(data):
    """The model of y on x, a, with effects varying by g, h."""
    y = data["y"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    # a: treatment coding; the first level in sorted order is the reference (now 'a1'), each
    # other level's effect is its difference from it.
    a_idx, a_levels = pd.factorize(data["a"], sort=True)
    if (a_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[a_idx < 0].tolist()
        raise ValueError(f"column 'a' is empty at rows {rows}; drop or fill them in data.py")
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    # (1 + a | g): the columns whose effects vary by g, as lme4's model matrix has them: a
    # by treatment contrasts (the reference level gets none).
    X_g = np.column_stack([np.ones(len(data)), np.eye(len(a_levels))[a_idx][:, 1:]])
    h_idx, h_levels = pd.factorize(data["h"], sort=True)
    if (h_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[h_idx < 0].tolist()
        raise ValueError(f"column 'h' is empty at rows {rows}; drop or fill them in data.py")
    b_idx, b_levels = pd.factorize(data["b"], sort=True)
    if (b_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[b_idx < 0].tolist()
        raise ValueError(f"column 'b' is empty at rows {rows}; drop or fill them in data.py")
    # (0 + b || h): the columns whose effects vary by h, as lme4's model matrix has them: b
    # by every level.
    X_h_b = np.eye(len(b_levels))[b_idx]
    coords = {
        "obs": data.index.to_numpy(),
        "a_effect": [str(v) for v in a_levels[1:]],
        "g": [str(v) for v in g_levels],
        "g_effect": ["Intercept", *(f"a[{v}]" for v in a_levels[1:])],
        "g_effect_corr": ["Intercept", *(f"a[{v}]" for v in a_levels[1:])],
        "h": [str(v) for v in h_levels],
        "h_b_effect": [*(f"b[{v}]" for v in b_levels)],
    }
    # Prior scales from the data, as rstanarm's defaults: computed from the 480 rows this
    # file was written for by the expression beside each, and written as numbers so that new
    # data values reuse the compiled model. If the data change much (`mlm run` warns at a
    # factor of 2), put the new values here or write this file anew: mlm generate model
    # --formula ... --force.
    y_mean = 1.732  # y.mean(): the outcome's mean
    y_sd = 1.395  # y.std(): the outcome's SD
    x_sd = 0.9554  # x.std()

    with pm.Model(coords=coords) as model:
        x_ = pm.Data("x", x, dims="obs")
        a_ = pm.Data("a_idx", a_idx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        X_g_ = pm.Data("X_g", X_g, dims=("obs", "g_effect"))
        h_ = pm.Data("h_idx", h_idx, dims="obs")
        X_h_b_ = pm.Data("X_h_b", X_h_b, dims=("obs", "h_b_effect"))
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: the outcome when every predictor is 0 (and at reference levels); wide, as 0
        # may lie far from the data.
        intercept = pm.Normal("Intercept", mu=y_mean, sigma=5 * y_sd)
        # b_x: weakly informative, 2.5 outcome SDs per SD of x (rstanarm's default scale).
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x_sd)
        # b_a: weakly informative, a level may differ from the reference by about 2.5 outcome
        # SDs.
        b_a = pm.Normal("b_a", mu=0, sigma=2.5 * y_sd, dims="a_effect")

        # (1 + a | g): an intercept and the effects of a per level of g, correlated, centred:
        # each level's data say more about its effect than the population distribution does
        # (expected information per level, n sigma_g^2 / sigma^2: intercept 9.3, at least 5.6;
        # the lower end of its 90 % interval is >= 1; from a one-way ANOVA by g (24 levels,
        # median 20 rows) of the response adjusted for x, a and h, F = 10.3 on 23 and 446 df),
        # so the centred form samples best: u ~ MvNormal(0, chol). The covariance is an LKJ(2)
        # correlation (mildly favouring small correlations) and half-normal SDs on the scale of
        # the outcome's SD per SD of each column.
        # Where they are not, non-centre it: z_g = pm.Normal("z_g", mu=0, sigma=1, dims=("g",
        # "g_effect")) and u_g = z_g @ chol_g.T, in place of the MvNormal.
        chol_g, corr_g, sd_g = pm.LKJCholeskyCov(
            "chol_g",
            n=X_g.shape[1],
            eta=2.0,
            sd_dist=pm.HalfNormal.dist(
                sigma=np.array([y_sd, *[y_sd] * (len(a_levels) - 1)]), shape=X_g.shape[1]
            ),
            compute_corr=True,
            store_in_trace=False,
        )
        u_g = pm.MvNormal("u_g", mu=0, chol=chol_g, dims=("g", "g_effect"))
        pm.Deterministic("sigma_g", sd_g, dims="g_effect")
        pm.Deterministic("corr_g", corr_g, dims=("g_effect", "g_effect_corr"))

        # (0 + b || h): each column of X_h_b has an effect per level of h, independent of the
        # others, centred: each level's data say more about its effect than the population
        # distribution does (expected information per level, n sigma_g^2 / sigma^2: intercept
        # 9.1, at least 4; the lower end of its 90 % interval is >= 1; from a one-way ANOVA by h
        # (8 levels, median 60.5 rows) of the response adjusted for x, a and g, F = 10 on 7 and
        # 446 df), so the centred form samples best. Half-normal SDs on the scale of the
        # outcome's SD (per SD of a numeric column).
        sigma_h_b = pm.HalfNormal(
            "sigma_h_b", sigma=np.array([y_sd] * (len(b_levels))), dims="h_b_effect"
        )
        u_h_b = pm.Normal("u_h_b", mu=0, sigma=sigma_h_b, dims=("h", "h_b_effect"))

        # The residual SD; its prior mean is the outcome's SD.
        sigma = pm.Exponential("sigma", lam=1 / y_sd)
        mu = (
            intercept
            + b_x * x_
            + pt.concatenate([pt.zeros(1), b_a])[a_]
            + (u_g[g_] * X_g_).sum(axis=1)
            + (u_h_b[h_] * X_h_b_).sum(axis=1)
        )
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
