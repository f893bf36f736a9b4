"""compare(): the average difference in the expected outcome between two values of a predictor.

As marginaleffects' avg_comparisons: every row is predicted twice, once with `variable`
set to a and once set to b, and each posterior draw gives the mean over rows of
E[y | b] - E[y | a]. Both copies of a row share one draw of any new group's effect, so
the contrast is the predictor's, not the luck of two draws of a new group.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from mlm.errors import MlmError
from mlm.predict.core import predict_draws


def compare(
    build: Callable,
    data: pd.DataFrame,
    idata,
    variable: str,
    values: tuple = (0, 1),
    newdata: pd.DataFrame | None = None,
    by: str | None = None,
    *,
    seed=None,
    observed: str | None = None,
    new_levels: str = "gaussian",
) -> xr.DataArray:
    """Draws (chain, draw[, by]) of mean_rows E[y | variable=b] - mean_rows E[y | variable=a].

    The rows are newdata's, or the data's when newdata is None; values=(a, b). With by=COLUMN
    the average runs within each value of that column (of the rows), one entry per value.
    seed, observed and new_levels are predict()'s.
    """
    rows = data if newdata is None else newdata
    if variable not in rows.columns:
        raise MlmError(
            f"cannot compare: the rows have no column {variable!r}; "
            f"they have {', '.join(map(str, rows.columns))}"
        )
    if by is not None and by not in rows.columns:
        raise MlmError(
            f"cannot compare by {by!r}: the rows have no such column; "
            f"they have {', '.join(map(str, rows.columns))}"
        )
    if len(values) != 2:
        raise MlmError(f"values must be two values of {variable} to compare, not {values!r}")
    a, b = values
    low, high = rows.copy(), rows.copy()
    low[variable] = _set(rows[variable], a)
    high[variable] = _set(rows[variable], b)
    both = pd.concat([low, high], ignore_index=True)
    draws = predict_draws(
        build,
        data,
        both,
        idata,
        kinds=("mean",),
        seed=seed,
        observed=observed,
        new_levels=new_levels,
    )
    mean = draws["mean"]
    n = len(rows)
    difference = mean.isel(row=slice(n, 2 * n)).to_numpy() - mean.isel(row=slice(0, n)).to_numpy()
    attrs = {"kind": "comparison", "variable": variable, "values": f"{a!r}, {b!r}"}
    name = f"{mean.name}: {variable} {b} - {a}"
    coords = {"chain": mean.coords["chain"], "draw": mean.coords["draw"]}
    if by is None:
        return xr.DataArray(
            difference.mean(axis=-1), dims=("chain", "draw"), coords=coords, name=name, attrs=attrs
        )
    groups = rows[by].to_numpy()
    levels = pd.unique(groups)
    try:
        levels = np.sort(levels)
    except TypeError:
        pass
    stacked = np.stack([difference[..., groups == level].mean(axis=-1) for level in levels], -1)
    return xr.DataArray(
        stacked, dims=("chain", "draw", by), coords={**coords, by: levels}, name=name, attrs=attrs
    )


def _set(column: pd.Series, value) -> pd.Series:
    """The column with every entry set to value, keeping a categorical's categories."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = list(column.cat.categories)
        if value not in categories:
            categories.append(value)
        dtype = pd.CategoricalDtype(categories, ordered=column.cat.ordered)
        return pd.Series(pd.Categorical([value] * len(column), dtype=dtype), index=column.index)
    return pd.Series([value] * len(column), index=column.index)
