"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ x + a + x:a + b + a:b + (1 | g)

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

import pandas as pd
import pymc as pm
import pytensor.tensor as pt


def build(data):
    """The model of y on x, a, x:a, b, a:b, with effects varying by g."""
    y = data["y"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    # a: treatment coding; the first level in sorted order is the reference (now 'a1'), each
    # other level's effect is its difference from it.
    a_idx, a_levels = pd.factorize(data["a"], sort=True)
    if (a_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[a_idx < 0].tolist()
        raise ValueError(f"column 'a' is empty at rows {rows}; drop or fill them in data.py")
    # b: treatment coding; the first level in sorted order is the reference (now 'hi'), each
    # other level's effect is its difference from it.
    b_idx, b_levels = pd.factorize(data["b"], sort=True)
    if (b_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[b_idx < 0].tolist()
        raise ValueError(f"column 'b' is empty at rows {rows}; drop or fill them in data.py")
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    coords = {
        "obs": data.index.to_numpy(),
        "a_effect": [str(v) for v in a_levels[1:]],
        "b_effect": [str(v) for v in b_levels[1:]],
        "g": [str(v) for v in g_levels],
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
        b_ = pm.Data("b_idx", b_idx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
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
        # b_x_by_a: weakly informative, 2.5 outcome SDs per SD of x:a (rstanarm's default
        # scale).
        b_x_by_a = pm.Normal("b_x_by_a", mu=0, sigma=2.5 * y_sd / x_sd, dims="a_effect")
        # b_b: weakly informative, a level may differ from the reference by about 2.5 outcome
        # SDs.
        b_b = pm.Normal("b_b", mu=0, sigma=2.5 * y_sd, dims="b_effect")
        # b_a_by_b: weakly informative, a level may differ from the reference by about 2.5
        # outcome SDs.
        b_a_by_b = pm.Normal("b_a_by_b", mu=0, sigma=2.5 * y_sd, dims=("a_effect", "b_effect"))

        # (1 | g): an intercept per level of g, centred on the intercept (a_g ~
        # Normal(intercept, sigma_g)): each level's data say more about its effect than the
        # population distribution does (expected information per level, n sigma_g^2 / sigma^2:
        # intercept 7.3, at least 4.4; the lower end of its 90 % interval is >= 1; from a one-
        # way ANOVA by g (24 levels, median 20 rows) of the response adjusted for x, a, x:a, b
        # and a:b, F = 8.31 on 23 and 448 df), so the centred form samples best; on the
        # intercept, it does not trade off against the mean of u_g. The SD's half-normal prior
        # has the scale of the outcome's SD.
        # Where they are not, non-centre it: z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g") and
        # u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g"), in place of the two lines
        # below.
        sigma_g = pm.HalfNormal("sigma_g", sigma=y_sd)
        a_g = pm.Normal("a_g", mu=intercept, sigma=sigma_g, dims="g")
        u_g = pm.Deterministic("u_g", a_g - intercept, dims="g")

        # The residual SD; its prior mean is the outcome's SD.
        sigma = pm.Exponential("sigma", lam=1 / y_sd)
        mu = (
            intercept
            + b_x * x_
            + pt.concatenate([pt.zeros(1), b_a])[a_]
            + pt.concatenate([pt.zeros(1), b_x_by_a])[a_] * x_
            + pt.concatenate([pt.zeros(1), b_b])[b_]
            + pt.set_subtensor(pt.zeros((len(a_levels), len(b_levels)))[1:, 1:], b_a_by_b)[a_, b_]
            + u_g[g_]
        )
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
