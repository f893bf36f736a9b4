"""Predictions from a fitted trace: new rows, new group levels, counterfactual comparisons.

Pure functions of the project's build(data), the data the trace was fitted on and the
trace (an xarray DataTree with a posterior group, or that group as a Dataset); nothing is
resampled and no Project is needed:

    predict(build, data, newdata, idata, kind="response" | "mean", seed=...)
        -> draws (chain, draw, row) for newdata's rows
    compare(build, data, idata, variable, values=(a, b), newdata=None, by=None, seed=...)
        -> draws (chain, draw[, by]) of the average difference E[y | b] - E[y | a]
    summary(draws, prob=0.95) -> a tidy table: mean, sd, q2.5, q97.5 per row (or subgroup)

How: the model is built on the training rows followed by the new rows, so the group
effects' coords hold every fitted level (in the data's order) plus the new ones, and
treatment-coded factors keep the data's reference level. Each free variable takes its
posterior draws by label. A variable whose coords hold labels the fit never saw is drawn
from its own distribution given the posterior draws of its parents, and its fitted labels
are overwritten with their draws; the expected value (the likelihood's mean, PyMC's mean
dispatcher) or a new observation is then computed per posterior draw, for the new rows
only. Non-centred (z ~ N(0, 1), u = z * sigma), correlated (z @ chol.T) and centred
(u ~ N(0, sigma)) effects so draw a new level from the fitted population, jointly:
brms' sample_new_levels="gaussian". new_levels="uncertainty" instead borrows, per draw,
the effects of a fitted level picked at random (brms' "uncertainty", bambi's
sample_new_groups). A new level of anything that is not a group effect (a fixed effect's
factor level, one sigma per level) is refused, as brms and bambi refuse it.

The convention a hand-written model.py needs (the template's, example_project's and the
formula front end's models follow it): build(data) takes everything row-wise from `data`
(predictors and group indices in pm.Data, or arrays computed from `data` inside build),
takes the group effects' coords from the data's levels (pd.factorize(..., sort=True)),
computes nothing from the whole data that a prediction would need (standardize in data.py
instead), and puts dims on the likelihood, rows first. Whatever breaks it is one MlmError
that names it; newdata may leave out the outcome column only.
"""

from mlm.predict.compare import compare
from mlm.predict.core import predict, predict_draws
from mlm.predict.summary import summary

__all__ = ["compare", "predict", "predict_draws", "summary"]
