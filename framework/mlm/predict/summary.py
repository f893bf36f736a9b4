"""summary(): a tidy table of posterior draws, one line per row (or subgroup)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")


def summary(draws: xr.DataArray, prob: float = 0.95) -> pd.DataFrame:
    """Mean, SD and the equal-tailed interval of probability `prob` of the draws.

    One line per entry of the dims other than chain and draw (row, or the `by` column of
    a comparison), those dims as the first columns; a comparison without `by` gives one
    line. The bounds are named by their quantiles: q2.5 and q97.5 for prob=0.95, as brms's
    Q2.5 and Q97.5.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must lie between 0 and 1, not {prob}")
    sample = [d for d in SAMPLE_DIMS if d in draws.dims]
    rest = [d for d in draws.dims if d not in sample]
    tail = (1 - prob) / 2
    lower, upper = _label(100 * tail), _label(100 * (1 - tail))
    stacked = draws.stack(sample=sample).transpose(*rest, "sample")
    values = stacked.to_numpy().reshape(-1, stacked.sizes["sample"])
    table = pd.DataFrame(
        {
            "mean": values.mean(axis=1),
            "sd": values.std(axis=1, ddof=1),
            lower: np.quantile(values, tail, axis=1),
            upper: np.quantile(values, 1 - tail, axis=1),
        }
    )
    if rest:
        levels = [
            draws.coords[d].to_numpy() if d in draws.coords else np.arange(draws.sizes[d])
            for d in rest
        ]
        index = pd.MultiIndex.from_product(levels, names=rest).to_frame(index=False)
        table = pd.concat([index, table], axis=1)
    table.attrs["prob"] = prob
    return table


def _label(percent: float) -> str:
    """q2.5, q97.5, q5, ...: a quantile's column name."""
    return f"q{percent:.10g}"
