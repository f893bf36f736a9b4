"""Model: build(data) returns the PyMC model.

Written by `mlm` from the formula (lme4 syntax)

    cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)

family binomial with a logit link; incidence successes out of size trials. It is plain
PyMC and yours to edit: mlm never rewrites it.

Categorical columns use treatment coding, as lme4 does: the reference level (the first
in sorted order) gets no coefficient, each other level's is its difference from it (with
the data it was written for: period -> '1').

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
    """The model of incidence on period, with effects varying by herd."""
    y = data["incidence"].to_numpy(dtype=float)
    # The number of trials of each row (size): y of them are successes.
    trials = data["size"].to_numpy(dtype=int)
    # period: treatment coding; the first level in sorted order is the reference (now '1'),
    # each other level's effect is its difference from it.
    period_idx, period_levels = pd.factorize(data["period"], sort=True)
    if (period_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[period_idx < 0].tolist()
        raise ValueError(f"column 'period' is empty at rows {rows}; drop or fill them in data.py")
    herd_idx, herd_levels = pd.factorize(data["herd"], sort=True)
    if (herd_idx < 0).any():
        # factorize codes an empty cell as -1, which would index the last level.
        rows = data.index[herd_idx < 0].tolist()
        raise ValueError(f"column 'herd' is empty at rows {rows}; drop or fill them in data.py")
    coords = {
        "obs": data.index.to_numpy(),
        "period_effect": [str(v) for v in period_levels[1:]],
        "herd": [str(v) for v in herd_levels],
    }

    with pm.Model(coords=coords) as model:
        trials_ = pm.Data("trials", trials, dims="obs")
        period_ = pm.Data("period_idx", period_idx, dims="obs")
        herd_ = pm.Data("herd_idx", herd_idx, dims="obs")
        # The outcome in pm.Data too, as the predictors are: new values of either reuse
        # the compiled model.
        y_ = pm.Data("incidence_obs", y, dims="obs")

        # Population-level effects.
        # Intercept: the log-odds when every predictor is 0; sd 2.5 spans probabilities 0.01 to
        # 0.99.
        intercept = pm.Normal("Intercept", mu=0, sigma=2.5)
        # b_period: weakly informative, a level may differ from the reference by about 2.5 units
        # of the link.
        b_period = pm.Normal("b_period", mu=0, sigma=2.5, dims="period_effect")

        # (1 | herd): an intercept per level of herd, centred on the intercept (a_herd ~
        # Normal(intercept, sigma_herd)): each level's data say more about its effect than the
        # population distribution does (expected information per level, n sigma_g^2 / sigma^2,
        # sigma^2 the variance within levels on the response's scale: intercept 3.3, at least
        # 1.5; the lower end of its 90 % interval is >= 1; from a one-way ANOVA by herd (15
        # levels, median 4 rows, 61 trials) of the response adjusted for period, F = 4.02 on 14
        # and 824 df), so the centred form samples best; on the intercept, it does not trade off
        # against the mean of u_herd. The SD's half-normal prior has scale 1 on the link scale.
        # Where they are not, non-centre it: z_herd = pm.Normal("z_herd", mu=0, sigma=1,
        # dims="herd") and u_herd = pm.Deterministic("u_herd", z_herd * sigma_herd,
        # dims="herd"), in place of the two lines below.
        sigma_herd = pm.HalfNormal("sigma_herd", sigma=1)
        a_herd = pm.Normal("a_herd", mu=intercept, sigma=sigma_herd, dims="herd")
        u_herd = pm.Deterministic("u_herd", a_herd - intercept, dims="herd")

        eta = intercept + pt.concatenate([pt.zeros(1), b_period])[period_] + u_herd[herd_]
        pm.Binomial("incidence", n=trials_, logit_p=eta, observed=y_, dims="obs")

    return model
