"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ tx + (0 + tx | g)
    sigma: one per level of b

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Each group term is centred (u ~ Normal(0, sigma)) when each level's data say more about
its effect than the population distribution does, and non-centred (u = z * sigma, the
cure for divergences when a group SD is small) when they may not; the comment above it
says which and why, with the numbers, and how to flip it. Priors are weakly informative
and scaled from the data, as commented beside each; change them on their lines.

Priors set by --prior (the others are mlm's defaults, commented beside each):

    Intercept=Normal(0, 100)
    b_tx=Normal(0, 100)
    sigma_g_tx^2=Gamma(1, 1)
    sigma**2=Uniform(0, 100)
"""

import pandas as pd
import pymc as pm


def build(data):
    """The model of y on tx, with effects varying by g."""
    y = data["y"].to_numpy(dtype=float)
    tx = data["tx"].to_numpy(dtype=float)
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    if (g_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[g_idx < 0].tolist()
        raise ValueError(f"column 'g' is empty at rows {rows}; drop or fill them in data.py")
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
        "b": [str(v) for v in b_levels],
    }

    with pm.Model(coords=coords) as model:
        tx_ = pm.Data("tx", tx, dims="obs")
        g_ = pm.Data("g_idx", g_idx, dims="obs")
        b_ = pm.Data("b_idx", b_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("y_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: set by --prior 'Intercept=Normal(0, 100)'.
        # (mlm's default: Normal(mu=y.mean(), sigma=2.5 * y.std()).)
        intercept_c = pm.Normal("Intercept_centred", mu=0, sigma=100)
        # b_tx: set by --prior 'b_tx=Normal(0, 100)'.
        # (mlm's default: Normal(mu=0, sigma=2.5 * y.std() / tx.std()).)
        b_tx = pm.Normal("b_tx", mu=0, sigma=100)
        # Intercept: the outcome when every predictor is 0 (and at reference levels), as lme4
        # reports it.
        pm.Deterministic("Intercept", intercept_c - b_tx * tx_centre)

        # (0 + tx | g): a slope on tx per level of g, non-centred: a level's data may say less
        # about its effect than the population distribution does (expected information per
        # level, n sigma_g^2 / sigma^2: slope on tx 0.05, at least 0; a lower end of a 90 %
        # interval is below 1; from a one-way ANOVA by g (24 levels, median 20 rows) of the
        # response adjusted for tx, F = 7.84 on 23 and 455 df), so sigma_g's posterior reaches
        # where the centred form funnels; the non-centred form samples well there.
        # Where each level's data are informative, centre it: u_g_tx = pm.Normal("u_g_tx", mu=0,
        # sigma=sigma_g_tx, dims="g"), in place of the two lines below.
        # sigma_g_tx: set by --prior 'sigma_g_tx^2=Gamma(1, 1)', on the variance sigma2_g_tx
        # (sigma_g_tx is its square root).
        # (mlm's default: HalfNormal(sigma=y.std() / tx.std()).)
        sigma2_g_tx = pm.Gamma("sigma2_g_tx", alpha=1, beta=1)
        sigma_g_tx = pm.Deterministic("sigma_g_tx", pm.math.sqrt(sigma2_g_tx))
        z_g_tx = pm.Normal("z_g_tx", mu=0, sigma=1, dims="g")
        u_g_tx = pm.Deterministic("u_g_tx", z_g_tx * sigma_g_tx, dims="g")

        # The residual SD: one per level of b (coords "b": every level).
        # sigma: set by --prior 'sigma**2=Uniform(0, 100)', on the variance sigma2 (sigma is its
        # square root).
        # (mlm's default: log(sigma) linear in b.)
        sigma2 = pm.Uniform("sigma2", lower=0, upper=100, dims="b")
        sigma = pm.Deterministic("sigma", pm.math.sqrt(sigma2), dims="b")

        mu = intercept_c + b_tx * (tx_ - tx_centre) + u_g_tx[g_] * tx_
        pm.Normal("y", mu=mu, sigma=sigma[b_], observed=y_, dims="obs")

    return model
