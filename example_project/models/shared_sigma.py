"""The original specification: one residual variance shared by both arms.

Identical to model.py except for sigma_e, which is a single scalar here. Kept beside the
per-arm model so both can be fitted and compared (the third question: does the data
support a residual variance per condition?).
"""

import numpy as np
import pymc as pm


def build(data):
    """The partially clustered model with one residual SD for both conditions."""
    treated = (data["condition"] == "treated").to_numpy().astype(int)
    groups = np.sort(data.loc[treated == 1, "group"].unique())
    group_idx = np.searchsorted(groups, data["group"].to_numpy()).clip(0, len(groups) - 1)
    coords = {"group": [str(g) for g in groups], "obs": data["subject"].to_numpy()}

    with pm.Model(coords=coords) as model:
        treated_ = pm.Data("treated", treated, dims="obs")
        group_ = pm.Data("group_idx", group_idx, dims="obs")
        y_ = pm.Data("y_obs", data["y"].to_numpy(), dims="obs")

        b0 = pm.Normal("b0", mu=0, sigma=100)  # questioner's prior: variance 10,000
        b1 = pm.Normal("b1", mu=0, sigma=100)  # questioner's prior: variance 10,000
        var_u = pm.Gamma("var_u", alpha=1, beta=1)  # questioner's prior, on the variance
        var_e = pm.Uniform("var_e", lower=0, upper=100)  # questioner's prior, one for both arms

        sigma_u = pm.Deterministic("sigma_u", pm.math.sqrt(var_u))
        sigma_e = pm.Deterministic("sigma_e", pm.math.sqrt(var_e))

        # Non-centered group effects, as in model.py.
        z = pm.Normal("z", mu=0, sigma=1, dims="group")
        u = pm.Deterministic("u", z * sigma_u, dims="group")

        mu = b0 + b1 * treated_ + u[group_] * treated_
        pm.Normal("y", mu=mu, sigma=sigma_e, observed=y_, dims="obs")

    return model
