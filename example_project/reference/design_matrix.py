"""The questioner's original formulation, for comparison only (not a model variant).

    y = X B + Z U + e,  X: n x 2 (intercept, treated),  Z: n x c (one column per therapy
    group, all-zero rows for controls),  U ~ N(0, var_u) drawn directly ("centered"),
    and one residual variance shared by both arms.

Same priors and likelihood as models/shared_sigma.py, so the two must give the same
posterior; the tests check that they do. The indexed form avoids the n x c matrix
product (mostly multiplications by zero) and the centered parameterization's funnel.
"""

import numpy as np
import pymc as pm


def design_matrices(data):
    """X (intercept, treated) and Z (therapy-group membership of treated subjects)."""
    treated = (data["condition"] == "treated").to_numpy().astype(float)
    groups = np.sort(data.loc[treated == 1, "group"].unique())
    X = np.column_stack([np.ones(len(data)), treated])
    Z = (data["group"].to_numpy()[:, None] == groups[None, :]) * treated[:, None]
    return X, Z, groups


def build(data):
    """The centered, design-matrix model of the original post (shared sigma_e)."""
    X, Z, groups = design_matrices(data)
    coords = {"coef": ["b0", "b1"], "group": [str(g) for g in groups]}
    with pm.Model(coords=coords) as model:
        B = pm.Normal("B", mu=0, sigma=100, dims="coef")  # variance 10,000
        var_u = pm.Gamma("var_u", alpha=1, beta=1)
        U = pm.Normal("U", mu=0, sigma=pm.math.sqrt(var_u), dims="group")  # centered
        var_e = pm.Uniform("var_e", lower=0, upper=100)
        pm.Deterministic("b0", B[0])
        pm.Deterministic("b1", B[1])
        pm.Deterministic("sigma_u", pm.math.sqrt(var_u))
        pm.Deterministic("sigma_e", pm.math.sqrt(var_e))
        y_hat = pm.math.dot(X, B) + pm.math.dot(Z, U)
        pm.Normal("y", mu=y_hat, sigma=pm.math.sqrt(var_e), observed=data["y"].to_numpy())
    return model
