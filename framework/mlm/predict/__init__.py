"""Predictions from a fitted trace: new rows, new group levels, counterfactual comparisons.

Pure functions of the project's build(data), the data the trace was fitted on and the
trace; nothing is resampled.

    predict(build, data, newdata, idata, kind="response" | "mean") -> draws (chain, draw, row)
    compare(build, data, idata, variable, values=(a, b), newdata=None, by=None) -> draws
    summary(draws) -> a tidy table (mean, sd, interval bounds per row or subgroup)
"""

from mlm.predict.compare import compare
from mlm.predict.core import predict, predict_draws
from mlm.predict.summary import summary

__all__ = ["compare", "predict", "predict_draws", "summary"]
