"""Model: build(data) returns the PyMC model.

Written by `mlm` from the Stata command

    mixed y c.x##c.x i.a#c.x ib(last).b a#k || g:, reml

which lme4 writes as

    y ~ x + I(x^2) + a:x + relevel(factor(b), ref = "lo") + a:factor(k) + (1 | g)

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order, unless the formula chose one) gets no coefficient, each other level's
is its difference from it (with the data it was written for: a -> 'a1', b -> 'lo'
(chosen by ib(last).b), k -> '0').

Computed columns, as the formula writes them: I(x^2) is x_pow_2.

Stata's reml option is noted and set aside: mlm's fit is Bayesian (the posterior, with
the priors written in model.py), not a point estimate.

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
    """The model of y on x, I(x^2), a:x, b, a:k, with effects varying by g."""
    y = data["y"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    x_pow_2 = x**2  # I(x^2)
    # a: treatment coding; the first level in sorted order is the reference (now 'a1'), each
    # other level's effect is its difference from it.
    a_idx, a_levels = pd.factorize(data["a"], sort=True)
    if (a_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[a_idx < 0].tolist()
        raise ValueError(f"column 'a' is empty at rows {rows}; drop or fill them in data.py")
    # b: treatment coding with the reference level 'lo', chosen by ib(last).b: it gets no
    # coefficient, each other level's effect is its difference from it. Change it here.
    b_cat = pd.Categorical(data["b"])
    b_cat = b_cat.reorder_categories(["lo", *b_cat.categories.drop("lo")])
    b_idx, b_levels = b_cat.codes, b_cat.categories
    if (b_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[b_idx < 0].tolist()
        raise ValueError(f"column 'b' is empty at rows {rows}; drop or fill them in data.py")
    # k: treatment coding; the first level in sorted order is the reference (now '0'), each
    # other level's effect is its difference from it.
    k_idx, k_levels = pd.factorize(data["k"], sort=True)
    if (k_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[k_idx < 0].tolist()
        raise ValueError(f"column 'k' is empty at rows {rows}; drop or fill them in data.py")
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    # Centred predictors, as brms and rstanarm centre them: the model samples the intercept
    # at these values (the means, rounded, of the data this file was written for), where it
    # does not trade off against the slopes, and reports Intercept at 0 as lme4 does. They
    # are constants so that predictions for new rows use the same ones; any values give the
    # same likelihood, and 0 undoes the centring.
    x_pow_2_centre = 0.9
    coords = {
        "obs": data.index.to_numpy(),
        "a_effect": [str(v) for v in a_levels[1:]],
        "b_effect": [str(v) for v in b_levels[1:]],
        "a": [str(v) for v in a_levels],
        "k_effect": [str(v) for v in k_levels[1:]],
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
    x_pow_2_sd = 1.297  # x_pow_2.std()

    with pm.Model(coords=coords) as model:
        x_ = pm.Data("x", x, dims="obs")
        x_pow_2_ = pm.Data("x_pow_2", x_pow_2, dims="obs")
        a_ = pm.Data("a_idx", a_idx, dims="obs")
        b_ = pm.Data("b_idx", b_idx, dims="obs")
        k_ = pm.Data("k_idx", k_idx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept_centred: the outcome at the centres (I(x^2) = 0.9), where the intercept does
        # not trade off against the slopes; around the outcome's mean, 2.5 outcome SDs wide. A
        # prior given for Intercept replaces this one (as in brms).
        intercept_c = pm.Normal("Intercept_centred", mu=y_mean, sigma=2.5 * y_sd)
        # b_x: weakly informative, 2.5 outcome SDs per SD of x (rstanarm's default scale).
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x_sd)
        # b_x_pow_2: weakly informative, 2.5 outcome SDs per SD of I(x^2) (rstanarm's default
        # scale).
        b_x_pow_2 = pm.Normal("b_x_pow_2", mu=0, sigma=2.5 * y_sd / x_pow_2_sd)
        # b_a_by_x: weakly informative, 2.5 outcome SDs per SD of a:x (rstanarm's default
        # scale).
        b_a_by_x = pm.Normal("b_a_by_x", mu=0, sigma=2.5 * y_sd / x_sd, dims="a_effect")
        # b_b: weakly informative, a level may differ from the reference by about 2.5 outcome
        # SDs.
        b_b = pm.Normal("b_b", mu=0, sigma=2.5 * y_sd, dims="b_effect")
        # b_a_by_k: weakly informative, a level may differ from the reference by about 2.5
        # outcome SDs.
        b_a_by_k = pm.Normal("b_a_by_k", mu=0, sigma=2.5 * y_sd, dims=("a", "k_effect"))
        # Intercept: the outcome when every predictor is 0 (and at reference levels), as lme4
        # reports it.
        pm.Deterministic("Intercept", intercept_c - b_x_pow_2 * x_pow_2_centre)

        # (1 | g): an intercept per level of g, centred on the intercept (a_g ~
        # Normal(intercept_c, sigma_g)): each level's data say more about its effect than the
        # population distribution does (expected information per level, n sigma_g^2 / sigma^2:
        # intercept 7.5, at least 4.4; the lower end of its 90 % interval is >= 1; from a one-
        # way ANOVA by g (24 levels, median 20 rows) of the response adjusted for x, I(x^2),
        # a:x, b and a:k, F = 8.45 on 23 and 447 df), so the centred form samples best; on the
        # intercept, it does not trade off against the mean of u_g. The SD's half-normal prior
        # has the scale of the outcome's SD.
        # Where they are not, non-centre it: z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g") and
        # u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g"), in place of the two lines
        # below.
        sigma_g = pm.HalfNormal("sigma_g", sigma=y_sd)
        a_g = pm.Normal("a_g", mu=intercept_c, sigma=sigma_g, dims="g")
        u_g = pm.Deterministic("u_g", a_g - intercept_c, dims="g")

        # The residual SD; its prior mean is the outcome's SD.
        sigma = pm.Exponential("sigma", lam=1 / y_sd)
        mu = (
            intercept_c
            + b_x * x_
            + b_x_pow_2 * (x_pow_2_ - x_pow_2_centre)
            + pt.concatenate([pt.zeros(1), b_a_by_x])[a_] * x_
            + pt.concatenate([pt.zeros(1), b_b])[b_]
            + pt.set_subtensor(pt.zeros((len(a_levels), len(k_levels)))[:, 1:], b_a_by_k)[a_, k_]
            + u_g[g_]
        )
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
