"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ I(x^2) + I(x - 10) + log(tx + 1) + factor(k) + relevel(factor(a), ref = "a2") +
        (1 + scale(x) || g)

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order, unless the formula chose one) gets no coefficient, each other level's
is its difference from it (with the data it was written for: a -> 'a2' (chosen by C(a,
Treatment("a2"))), k -> '0').

Computed columns, as the formula writes them: I(x^2) is x_pow_2; I(x - 10) is
x_minus_10; log(tx + 1) is log_tx_plus_1; scale(x) is scale_x.

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
    """The model of y on I(x^2), I(x - 10), log(tx + 1), k, a, with effects varying by g."""
    y = data["y"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    x_pow_2 = x**2  # I(x^2)
    x_minus_10 = x - 10  # I(x - 10)
    tx = data["tx"].to_numpy(dtype=float)
    log_tx_plus_1 = np.log(tx + 1)  # log(tx + 1)
    # k: treatment coding; the first level in sorted order is the reference (now '0'), each
    # other level's effect is its difference from it.
    k_idx, k_levels = pd.factorize(data["k"], sort=True)
    if (k_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[k_idx < 0].tolist()
        raise ValueError(f"column 'k' is empty at rows {rows}; drop or fill them in data.py")
    # a: treatment coding with the reference level 'a2', chosen by C(a, Treatment("a2")): it
    # gets no coefficient, each other level's effect is its difference from it. Change it
    # here.
    a_cat = pd.Categorical(data["a"])
    a_cat = a_cat.reorder_categories(["a2", *a_cat.categories.drop("a2")])
    a_idx, a_levels = a_cat.codes, a_cat.categories
    if (a_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[a_idx < 0].tolist()
        raise ValueError(f"column 'a' is empty at rows {rows}; drop or fill them in data.py")
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    # scale(x), the data's mean and SD as numbers: new rows scale alike
    scale_x = (x + 0.04699208333) / 0.9563775409  # scale(x)
    # Centred predictors, as brms and rstanarm centre them: the model samples the intercept
    # at these values (the means, rounded, of the data this file was written for), where it
    # does not trade off against the slopes, and reports Intercept at 0 as lme4 does. They
    # are constants so that predictions for new rows use the same ones; any values give the
    # same likelihood, and 0 undoes the centring.
    x_pow_2_centre = 0.9
    x_minus_10_centre = -10.05
    log_tx_plus_1_centre = 0.34
    coords = {
        "obs": data.index.to_numpy(),
        "k_effect": [str(v) for v in k_levels[1:]],
        "a_effect": [str(v) for v in a_levels[1:]],
        "g": [str(v) for v in g_levels],
    }
    # Prior scales from the data, as rstanarm's defaults: computed from the 480 rows this
    # file was written for by the expression beside each, and written as numbers so that new
    # data values reuse the compiled model. If the data change much (`mlm run` warns at a
    # factor of 2), put the new values here or write this file anew: mlm generate model
    # --formula ... --force.
    y_mean = 1.732  # y.mean(): the outcome's mean
    y_sd = 1.395  # y.std(): the outcome's SD
    x_pow_2_sd = 1.297  # x_pow_2.std()
    x_minus_10_sd = 0.9554  # x_minus_10.std()
    log_tx_plus_1_sd = 0.3465  # log_tx_plus_1.std()
    scale_x_sd = 0.999  # scale_x.std()

    with pm.Model(coords=coords) as model:
        x_pow_2_ = pm.Data("x_pow_2", x_pow_2, dims="obs")
        x_minus_10_ = pm.Data("x_minus_10", x_minus_10, dims="obs")
        log_tx_plus_1_ = pm.Data("log_tx_plus_1", log_tx_plus_1, dims="obs")
        k_ = pm.Data("k_idx", k_idx, dims="obs")
        a_ = pm.Data("a_idx", a_idx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        scale_x_ = pm.Data("scale_x", scale_x, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept_centred: the outcome at the centres (I(x^2) = 0.9, I(x - 10) = -10.05,
        # log(tx + 1) = 0.34), where the intercept does not trade off against the slopes; around
        # the outcome's mean, 2.5 outcome SDs wide. A prior given for Intercept replaces this
        # one (as in brms).
        intercept_c = pm.Normal("Intercept_centred", mu=y_mean, sigma=2.5 * y_sd)
        # b_x_pow_2: weakly informative, 2.5 outcome SDs per SD of I(x^2) (rstanarm's default
        # scale).
        b_x_pow_2 = pm.Normal("b_x_pow_2", mu=0, sigma=2.5 * y_sd / x_pow_2_sd)
        # b_x_minus_10: weakly informative, 2.5 outcome SDs per SD of I(x - 10) (rstanarm's
        # default scale).
        b_x_minus_10 = pm.Normal("b_x_minus_10", mu=0, sigma=2.5 * y_sd / x_minus_10_sd)
        # b_log_tx_plus_1: weakly informative, 2.5 outcome SDs per SD of log(tx + 1) (rstanarm's
        # default scale).
        b_log_tx_plus_1 = pm.Normal("b_log_tx_plus_1", mu=0, sigma=2.5 * y_sd / log_tx_plus_1_sd)
        # b_k: weakly informative, a level may differ from the reference by about 2.5 outcome
        # SDs.
        b_k = pm.Normal("b_k", mu=0, sigma=2.5 * y_sd, dims="k_effect")
        # b_a: weakly informative, a level may differ from the reference by about 2.5 outcome
        # SDs.
        b_a = pm.Normal("b_a", mu=0, sigma=2.5 * y_sd, dims="a_effect")
        # Intercept: the outcome when every predictor is 0 (and at reference levels), as lme4
        # reports it.
        pm.Deterministic(
            "Intercept",
            intercept_c
            - b_x_pow_2 * x_pow_2_centre
            - b_x_minus_10 * x_minus_10_centre
            - b_log_tx_plus_1 * log_tx_plus_1_centre,
        )

        # (1 | g): an intercept per level of g, centred on the intercept (a_g ~
        # Normal(intercept_c, sigma_g)): each level's data say more about its effect than the
        # population distribution does (expected information per level, n sigma_g^2 / sigma^2:
        # intercept 9, at least 5.4; the lower end of its 90 % interval is >= 1; from a one-way
        # ANOVA by g (24 levels, median 20 rows) of the response adjusted for I(x^2), I(x - 10),
        # log(tx + 1), k and a, F = 9.98 on 23 and 449 df), so the centred form samples best; on
        # the intercept, it does not trade off against the mean of u_g. The SD's half-normal
        # prior has the scale of the outcome's SD.
        # Where they are not, non-centre it: z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g") and
        # u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g"), in place of the two lines
        # below.
        sigma_g = pm.HalfNormal("sigma_g", sigma=y_sd)
        a_g = pm.Normal("a_g", mu=intercept_c, sigma=sigma_g, dims="g")
        u_g = pm.Deterministic("u_g", a_g - intercept_c, dims="g")

        # (0 + scale(x) || g): a slope on scale(x) per level of g, non-centred: a level's data
        # may say less about its effect than the population distribution does (expected
        # information per level, n sigma_g^2 / sigma^2: slope on scale(x) 1.6, at least 0.68; a
        # lower end of a 90 % interval is below 1; from a one-way ANOVA by g (24 levels, median
        # 20 rows) of the response adjusted for I(x^2), I(x - 10), log(tx + 1), k and a, F =
        # 9.98 on 23 and 449 df), so sigma_g's posterior reaches where the centred form funnels;
        # the non-centred form samples well there. The SD's half-normal prior has the scale of
        # the outcome's SD per SD of scale(x).
        # Where each level's data are informative, centre it: u_g_scale_x =
        # pm.Normal("u_g_scale_x", mu=0, sigma=sigma_g_scale_x, dims="g"), in place of the two
        # lines below.
        sigma_g_scale_x = pm.HalfNormal("sigma_g_scale_x", sigma=y_sd / scale_x_sd)
        z_g_scale_x = pm.Normal("z_g_scale_x", mu=0, sigma=1, dims="g")
        u_g_scale_x = pm.Deterministic("u_g_scale_x", z_g_scale_x * sigma_g_scale_x, dims="g")

        # The residual SD; its prior mean is the outcome's SD.
        sigma = pm.Exponential("sigma", lam=1 / y_sd)
        mu = (
            intercept_c
            + b_x_pow_2 * (x_pow_2_ - x_pow_2_centre)
            + b_x_minus_10 * (x_minus_10_ - x_minus_10_centre)
            + b_log_tx_plus_1 * (log_tx_plus_1_ - log_tx_plus_1_centre)
            + pt.concatenate([pt.zeros(1), b_k])[k_]
            + pt.concatenate([pt.zeros(1), b_a])[a_]
            + u_g[g_]
            + u_g_scale_x[g_] * scale_x_
        )
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
