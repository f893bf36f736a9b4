"""Checks of what user code returned, before anything expensive runs on it."""

from __future__ import annotations

from mlm.errors import MlmError


def check_frame(frame) -> None:
    """Refuse what load() returned unless it is a non-empty pandas DataFrame."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise MlmError(
            f"data.py: load() returned {type(frame).__name__}, expected a pandas.DataFrame"
        )
    if frame.empty:
        raise MlmError("data.py: load() returned an empty DataFrame")


def check_model(model, filename: str) -> None:
    """Refuse what build() returned unless it is a pymc.Model with clean observed data."""
    import pymc as pm

    if not isinstance(model, pm.Model):
        hint = " (did you forget `return model`?)" if model is None else ""
        raise MlmError(
            f"{filename}: build() returned {type(model).__name__}, expected a pymc.Model{hint}"
        )
    check_observed(model, filename)


def missing_values(data) -> str:
    """Where a DataFrame has NaN, as "y at rows [3, 17]; x at rows [5]" ("" if nowhere)."""
    try:
        missing = data.isna()
    except (AttributeError, TypeError):
        return ""
    parts = []
    for column in missing.columns[missing.any().to_numpy()]:
        rows = data.index[missing[column].to_numpy()]
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        parts.append(f"{column} at rows {list(rows[:10])}{more}")
    return "; ".join(parts)


def text_in_numbers(data) -> str:
    """Where a column of numbers holds some text, as "hours at rows [7]: 'unknown'" ("" if
    nowhere): a text (object or string) column whose non-missing values are mostly numbers.

    pandas reads such a column as text, and PyMC then fails with "ufunc 'isnan' not
    supported"; this names the column, the first rows and their values instead.
    """
    import pandas as pd

    try:
        columns = list(data.columns)
    except AttributeError:
        return ""
    parts = []
    for column in columns:
        values = data[column]
        if isinstance(values, pd.DataFrame):  # a duplicated column name
            continue
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        present = values.dropna()
        if present.empty:
            continue
        numbers = present.map(_is_number).astype(bool)
        if numbers.all() or numbers.mean() <= 0.5:
            continue
        text = present[~numbers]
        distinct = text.drop_duplicates()
        shown = ", ".join(repr(v) for v in distinct.iloc[:3])
        shown += ", ..." if len(distinct) > 3 else ""
        more = f" and {len(text) - 10} more" if len(text) > 10 else ""
        parts.append(f"{column} at rows {list(text.index[:10])}{more}: {shown}")
    return "; ".join(parts)


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return True


def check_observed(model, filename: str) -> None:
    """Refuse a model without data, or with NaN or infinite observations."""
    import numpy as np

    if not model.observed_RVs:
        raise MlmError(
            f"{filename}: build() returned a model with no observed variable; pass the "
            "outcome to its likelihood as observed=..."
        )
    for rv in model.observed_RVs:
        value = model.rvs_to_values[rv]
        observed = (
            value.get_value() if hasattr(value, "get_value") else getattr(value, "data", None)
        )
        if observed is None or not np.issubdtype(np.asarray(observed).dtype, np.number):
            continue
        observed = np.asarray(observed, dtype=float)
        bad = ~np.isfinite(observed)
        name = rv.name.removesuffix("_observed")
        imputed = [v.name for v in model.free_RVs if v.name == f"{name}_unobserved"]
        if bad.any() or imputed:
            where = np.flatnonzero(bad.reshape(-1))[:10].tolist()
            what = (
                f"{int(bad.sum())} infinite value(s) at positions {where}"
                if bad.any()
                else ("missing (NaN) values, which PyMC would silently impute")
            )
            raise MlmError(
                f"{filename}: build(): the observed variable '{name}' has {what}; drop or "
                "fix those rows in data.py"
            )
