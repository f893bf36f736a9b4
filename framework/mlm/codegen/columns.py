"""The data's columns as the formula uses them: numeric, or categorical with its levels.

`classify_columns` is the one place the data are read while writing model.py: it refuses,
with a message saying what to do, a formula that does not fit the data, and otherwise
says how each column enters the model. No value of the data is written into the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mlm.errors import MlmError
from mlm.formula import ModelSpec


@dataclass
class Columns:
    """How each column of the data enters the model."""

    numeric: set[str] = field(default_factory=set)
    categorical: dict[str, str] = field(default_factory=dict)  # column -> reference level
    distinct: dict[str, int] = field(default_factory=dict)  # numeric column -> distinct values


def classify_columns(spec: ModelSpec, data) -> Columns:
    """Each column `spec` uses, classified; a clear MlmError when the formula does not fit."""
    import numpy as np
    import pandas as pd

    missing = [name for name in spec.variables if name not in data.columns]
    if missing:
        raise MlmError(
            f"the formula names {_names(missing)}, not in the data; the data's columns are: "
            f"{', '.join(map(str, data.columns))}"
        )
    for name in spec.variables:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise MlmError(f"column {name!r}: rename it to a Python name (letters, digits, _)")
        if data[name].isna().any():
            raise MlmError(
                f"column {name!r} has {int(data[name].isna().sum())} missing values; drop or "
                "impute them in data.py"
            )
    columns = Columns()
    slopes = {v for g in spec.groups for t in g.terms for v in t.variables}
    used = (
        {v for t in spec.terms for v in t.variables}
        | slopes
        | {v for t in spec.sigma or () for v in t.variables}
    )
    for name in sorted(used):
        column = data[name]
        numeric = pd.api.types.is_numeric_dtype(column) and not isinstance(
            column.dtype, pd.CategoricalDtype
        )
        if numeric and name not in spec.categorical:
            columns.numeric.add(name)
            columns.distinct[name] = int(column.nunique())
            continue
        levels = pd.factorize(column, sort=True)[1]
        if len(levels) < 2:
            raise MlmError(
                f"column {name!r} is categorical with one level ({levels[0]!r}): it has no "
                "effect to estimate; drop it from the formula"
            )
        columns.categorical[name] = str(levels[0])
    for name in sorted(slopes & set(columns.categorical)):
        raise MlmError(
            f"{name!r} is categorical; a group term varies numeric columns only. Code the "
            f"level you need as a 0/1 column in data.py (e.g. data['{name}_b'] = "
            f"(data['{name}'] == 'b').astype(int)) and use that"
        )
    for name in sorted(columns.numeric):
        if np.ptp(data[name].to_numpy(dtype=float)) == 0:
            where = [g.source for g in spec.groups if any(name in t.variables for t in g.terms)]
            raise MlmError(
                f"column {name!r} is constant ({data[name].iloc[0]!r} in every row): a slope "
                f"on a constant cannot be told apart from the intercept"
                + (f" (in {', '.join(where)})" if where else "")
                + "; drop it from the formula"
            )
    for group in spec.groups:
        key = _factor_values(data, group.factor)
        if key.nunique() < 2:
            raise MlmError(
                f"{group.label}: the grouping {group.factor_label!r} has one level "
                f"({key.iloc[0]!r}), so there is no between-group variation to estimate; "
                "drop the term or group by a column with several levels"
            )
    _validate_response(spec, data)
    return columns


def _validate_response(spec: ModelSpec, data) -> None:
    """Raise when the response cannot be the outcome of `spec.family`."""
    import numpy as np
    import pandas as pd

    y = data[spec.response]
    if not pd.api.types.is_numeric_dtype(y) or isinstance(y.dtype, pd.CategoricalDtype):
        raise MlmError(f"the response {spec.response!r} must be numeric")
    values = y.to_numpy(dtype=float)
    if spec.family == "bernoulli" and not np.isin(values, (0, 1)).all():
        raise MlmError(f"family bernoulli needs a 0/1 response; {spec.response!r} is not")
    if spec.family == "poisson" and (
        (values < 0).any() or (values != values.round()).any() or values.sum() == 0
    ):
        raise MlmError(
            f"family poisson needs counts (integers >= 0, not all 0) in {spec.response!r}"
        )
    if spec.family in ("gaussian", "student_t") and np.ptp(values) == 0:
        raise MlmError(f"the response {spec.response!r} is constant")


def _factor_values(data, factor: tuple[str, ...]):
    """A grouping's level in each row: one column's value, or several joined by ':'."""
    key = data[factor[0]].astype(str)
    for name in factor[1:]:
        key = key + ":" + data[name].astype(str)
    return key


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)
