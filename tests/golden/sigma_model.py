"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ tx + (0 + tx | g)
    log(sigma) ~ b

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order) gets no coefficient, each other level's is its difference from it (with
the data it was written for: b -> 'hi').

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
    """The model of y on tx, with effects varying by g."""
    y = data["y"].to_numpy(dtype=float)
    tx = data["tx"].to_numpy(dtype=float)
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
    # b: treatment coding; the first level in sorted order is the reference (now 'hi'), each
    # other level's effect is its difference from it.
    b_idx, b_levels = pd.factorize(data["b"], sort=True)
    if (b_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[b_idx < 0].tolist()
        raise ValueError(f"column 'b' is empty at rows {rows}; drop or fill them in data.py")
    # Centred predictors, as brms and rstanarm centre them: the model samples the intercept
    # at these values (the means, rounded, of the data this file was written for), where it
    # does not trade off against the slopes, and reports Intercept at 0 as lme4 does. They
    # are constants so that predictions for new rows use the same ones; any values give the
    # same likelihood, and 0 undoes the centring.
    tx_centre = 0.49
    coords = {
        "obs": data.index.to_numpy(),
        "g": [str(v) for v in g_levels],
        "b_effect": [str(v) for v in b_levels[1:]],
    }
    # Prior scales from the data, as rstanarm's defaults: computed from the 480 rows this
    # file was written for by the expression beside each, and written as numbers so that new
    # data values reuse the compiled model. If the data change much (`mlm run` warns at a
    # factor of 2), put the new values here or write this file anew: mlm generate model
    # --formula ... --force.
    y_mean = 1.732  # y.mean(): the outcome's mean
    y_sd = 1.395  # y.std(): the outcome's SD
    tx_sd = 0.4998  # tx.std()

    with pm.Model(coords=coords) as model:
        tx_ = pm.Data("tx", tx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        b_ = pm.Data("b_idx", b_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept_centred: the outcome at the centres (tx = 0.49), where the intercept does
        # not trade off against the slopes; around the outcome's mean, 2.5 outcome SDs wide. A
        # prior given for Intercept replaces this one (as in brms).
        intercept_c = pm.Normal("Intercept_centred", mu=y_mean, sigma=2.5 * y_sd)
        # b_tx: weakly informative, 2.5 outcome SDs per SD of tx (rstanarm's default scale).
        b_tx = pm.Normal("b_tx", mu=0, sigma=2.5 * y_sd / tx_sd)
        # Intercept: the outcome when every predictor is 0 (and at reference levels), as lme4
        # reports it.
        pm.Deterministic("Intercept", intercept_c - b_tx * tx_centre)

        # (0 + tx | g): a slope on tx per level of g, non-centred: a level's data may say less
        # about its effect than the population distribution does (expected information per
        # level, n sigma_g^2 / sigma^2: slope on tx 0.05, at least 0; a lower end of a 90 %
        # interval is below 1; from a one-way ANOVA by g (24 levels, median 20 rows) of the
        # response adjusted for tx, F = 7.84 on 23 and 455 df), so sigma_g's posterior reaches
        # where the centred form funnels; the non-centred form samples well there. The SD's
        # half-normal prior has the scale of the outcome's SD per SD of tx.
        # Where each level's data are informative, centre it: u_g_tx = pm.Normal("u_g_tx", mu=0,
        # sigma=sigma_g_tx, dims="g"), in place of the two lines below.
        sigma_g_tx = pm.HalfNormal("sigma_g_tx", sigma=y_sd / tx_sd)
        z_g_tx = pm.Normal("z_g_tx", mu=0, sigma=1, dims="g")
        u_g_tx = pm.Deterministic("u_g_tx", z_g_tx * sigma_g_tx, dims="g")

        # The residual SD varies: log(sigma) is linear in b.
        # log_sigma_Intercept: around the log of the outcome's SD.
        log_sigma_Intercept = pm.Normal("log_sigma_Intercept", mu=np.log(y_sd), sigma=1)
        # log_sigma_b: sigma may change by a factor of about e (2.7) per level.
        log_sigma_b = pm.Normal("log_sigma_b", mu=0, sigma=1, dims="b_effect")

        mu = intercept_c + b_tx * (tx_ - tx_centre) + u_g_tx[g_] * tx_
        sigma = pm.math.exp(log_sigma_Intercept + pt.concatenate([pt.zeros(1), log_sigma_b])[b_])
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
