"""Model: build(data) returns the PyMC model.

A varying-intercept regression: each school has its own baseline score, drawn from a
common distribution, and study hours have one common slope,

    score_i = intercept + school_effect[school_i] + slope * hours_i + e_i.

The school effects are non-centered (a standard normal scaled by sigma_school), which
samples better than drawing them directly when there are few pupils per school.
"""

import pandas as pd
import pymc as pm


def build(data):
    """The varying-intercept model of score on hours, with one effect per school."""
    school_idx, schools = pd.factorize(data["school"], sort=True)
    if (school_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last school.
        rows = data.index[school_idx < 0].tolist()
        raise ValueError(f"column 'school' is empty at rows {rows}; drop or fill them in data.py")
    coords = {"school": list(schools), "obs": data.index.to_numpy()}

    with pm.Model(coords=coords) as model:
        school = pm.Data("school_idx", school_idx, dims="obs")
        hours = pm.Data("hours", data["hours"].to_numpy(), dims="obs")
        # The outcome in pm.Data too: a refit after the data change reuses the compiled model.
        score = pm.Data("score_obs", data["score"].to_numpy(), dims="obs")

        # Priors: weakly informative on the scale of a 0-100 test score.
        intercept = pm.Normal("intercept", mu=50, sigma=25)
        slope = pm.Normal("slope", mu=0, sigma=5)
        sigma_school = pm.HalfNormal("sigma_school", sigma=10)
        sigma = pm.HalfNormal("sigma", sigma=10)

        # Non-centered school effects: school_effect = z * sigma_school.
        z_school = pm.Normal("z_school", mu=0, sigma=1, dims="school")
        school_effect = pm.Deterministic("school_effect", z_school * sigma_school, dims="school")

        mu = intercept + school_effect[school] + slope * hours
        pm.Normal("score", mu=mu, sigma=sigma, observed=score, dims="obs")

    return model
