"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ tx + (0 + tx | g)
    log(sigma) ~ b

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order) gets no coefficient, each other level's is its difference from it (with
the data it was written for: b -> 'hi').

Group effects are non-centered (u = z * sigma): the usual cure for divergences
when a group SD is small. Priors are weakly informative and scaled from the
data, as commented beside each; change them on their lines.
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
    coords = {
        "obs": data.index.to_numpy(),
        "g": [str(v) for v in g_levels],
        "b_effect": [str(v) for v in b_levels[1:]],
    }
    # Prior scales follow the data, as rstanarm's defaults do: y_sd is the outcome's SD.
    y_sd = y.std()

    with pm.Model(coords=coords) as model:
        tx_ = pm.Data("tx", tx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        b_ = pm.Data("b_idx", b_idx, dims="obs")
        # The outcome in pm.Data too: a refit after the data change reuses the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: the outcome when every predictor is 0 (and at reference levels); wide, as 0
        # may lie far from the data.
        intercept = pm.Normal("Intercept", mu=y.mean(), sigma=5 * y_sd)
        # b_tx: weakly informative, 2.5 outcome SDs per SD of tx (rstanarm's default scale).
        b_tx = pm.Normal("b_tx", mu=0, sigma=2.5 * y_sd / tx.std())

        # (0 + tx | g): a slope on tx per level of g, non-centered (u = z * sigma) so it samples
        # well even when sigma is near 0. The SD's half-normal prior has the scale of the
        # outcome's SD per SD of tx.
        sigma_g_tx = pm.HalfNormal("sigma_g_tx", sigma=y_sd / tx.std())
        z_g_tx = pm.Normal("z_g_tx", mu=0, sigma=1, dims="g")
        u_g_tx = pm.Deterministic("u_g_tx", z_g_tx * sigma_g_tx, dims="g")

        # The residual SD varies: log(sigma) is linear in b.
        # log_sigma_Intercept: around the log of the outcome's SD.
        log_sigma_Intercept = pm.Normal("log_sigma_Intercept", mu=np.log(y_sd), sigma=1)
        # log_sigma_b: sigma may change by a factor of about e (2.7) per level.
        log_sigma_b = pm.Normal("log_sigma_b", mu=0, sigma=1, dims="b_effect")

        mu = intercept + b_tx * tx_ + u_g_tx[g_] * tx_
        sigma = pm.math.exp(log_sigma_Intercept + pt.concatenate([pt.zeros(1), log_sigma_b])[b_])
        pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")

    return model
