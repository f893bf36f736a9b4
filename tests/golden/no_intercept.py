"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    y ~ 0 + a + x

family gaussian. It is plain PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding: the first level in sorted order is the
reference and gets no coefficient (with the data it was written for: a -> 'a1').
"""

import pandas as pd
import pymc as pm


def build(data):
    """The model of y on a, x."""
    y = data["y"].to_numpy(dtype=float)
    a_idx, a_levels = pd.factorize(data["a"], sort=True)
    x = data["x"].to_numpy(dtype=float)
    coords = {
        "obs": data.index.to_numpy(),
        "a": [str(v) for v in a_levels],
    }
    # Prior scales follow the data, as rstanarm's defaults do: y_sd is the outcome's SD.
    y_sd = y.std()

    with pm.Model(coords=coords) as model:
        a_ = pm.Data("a_idx", a_idx, dims="obs")
        x_ = pm.Data("x", x, dims="obs")

        # Population-level effects.
        # b_a: the mean outcome at each level of a, weakly informative.
        b_a = pm.Normal("b_a", mu=y.mean(), sigma=5 * y_sd, dims="a")
        # b_x: weakly informative, 2.5 outcome SDs per SD of x (rstanarm's default scale).
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x.std())

        # The residual SD; its prior mean is the outcome's SD.
        sigma = pm.Exponential("sigma", lam=1 / y_sd)
        mu = b_a[a_] + b_x * x_
        pm.Normal("y", mu=mu, sigma=sigma, observed=y, dims="obs")

    return model
