"""The partially clustered trial model, indexed and non-centered, one sigma_e per arm.

    y_i = b0 + b1*treated_i + u[group_i]*treated_i + e_i,   e_i ~ N(0, sigma_e[condition_i])

u_j is the effect of therapy group j; it exists only in the treated arm (controls are
not clustered), which the factor treated_i makes explicit. Instead of the original's
n x 10 design matrix Z, each subject indexes its group's effect: same model, fewer
operations, and named coords on every parameter.

The priors are exactly the questioner's (from their SAS PROC MCMC fit), on the variance
scale where they put them; they asked not to change them.
"""

import numpy as np
import pymc as pm


def build(data):
    """The model of y on condition, with therapy-group effects in the treated arm only."""
    treated = (data["condition"] == "treated").to_numpy().astype(int)
    # Therapy groups are the groups of treated subjects; controls' own groups carry no effect.
    groups = np.sort(data.loc[treated == 1, "group"].unique())
    group_idx = np.searchsorted(groups, data["group"].to_numpy()).clip(0, len(groups) - 1)
    present = set(data["condition"].astype(str))
    if not {"control", "treated"} <= present:
        raise ValueError(
            f"column 'condition' holds only {sorted(present)}: this model compares two arms "
            "and needs subjects in both 'control' and 'treated'"
        )
    coords = {
        "condition": ["control", "treated"],
        "group": [str(g) for g in groups],
        "obs": data["subject"].to_numpy(),
    }

    with pm.Model(coords=coords) as model:
        treated_ = pm.Data("treated", treated, dims="obs")
        group_ = pm.Data("group_idx", group_idx, dims="obs")
        # The outcome in pm.Data too: a refit after the data change reuses the compiled model.
        y_ = pm.Data("y_obs", data["y"].to_numpy(), dims="obs")

        b0 = pm.Normal("b0", mu=0, sigma=100)  # questioner's prior: variance 10,000
        b1 = pm.Normal("b1", mu=0, sigma=100)  # questioner's prior: variance 10,000
        var_u = pm.Gamma("var_u", alpha=1, beta=1)  # questioner's prior, on the variance
        var_e = pm.Uniform("var_e", lower=0, upper=100, dims="condition")  # questioner's, per arm

        sigma_u = pm.Deterministic("sigma_u", pm.math.sqrt(var_u))
        sigma_e = pm.Deterministic("sigma_e", pm.math.sqrt(var_e), dims="condition")

        # Non-centered group effects: u = z * sigma_u samples well even when sigma_u is small.
        z = pm.Normal("z", mu=0, sigma=1, dims="group")
        u = pm.Deterministic("u", z * sigma_u, dims="group")

        mu = b0 + b1 * treated_ + u[group_] * treated_
        pm.Normal("y", mu=mu, sigma=sigma_e[treated_], observed=y_, dims="obs")

    return model
