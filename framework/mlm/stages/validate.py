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


def check_model(model, filename: str, data=None, read: set | None = None) -> None:
    """Refuse what build() returned unless it is a pymc.Model with clean observed data,
    indices in range, and no missing value in a column build() read (`read`)."""
    import pymc as pm

    if not isinstance(model, pm.Model):
        hint = " (did you forget `return model`?)" if model is None else ""
        raise MlmError(
            f"{filename}: build() returned {type(model).__name__}, expected a pymc.Model{hint}"
        )
    check_observed(model, filename)
    check_indices(model, filename, data)
    if data is not None and read:
        columns = [c for c in data.columns if c in read]
        if missing := missing_values(data[columns]):
            raise MlmError(
                f"{filename}: build() reads columns with missing values: {missing}; "
                "mlm refuses them (a missing group or predictor would be fitted as something "
                "else without a word): drop or fill those rows in data.py"
            )


def reading(frame):
    """`frame` as a DataFrame that notes which columns are read from it (by `frame[...]`
    or `frame.name`), and the set it notes them in."""
    import pandas as pd

    read: set = set()

    def note(key) -> None:
        keys = key if isinstance(key, list | tuple | pd.Index) else [key]
        for k in keys:
            try:
                if k in frame.columns:
                    read.add(k)
            except TypeError:  # a mask or a slice, not a column name
                pass

    class Reading(pd.DataFrame):
        @property
        def _constructor(self):
            return pd.DataFrame  # what build() derives from it is a plain DataFrame

        def __getitem__(self, key):
            note(key)
            return super().__getitem__(key)

        def __getattr__(self, name):
            if not name.startswith("_"):
                note(name)
            return super().__getattr__(name)

    return Reading(frame), read


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


def check_indices(model, filename: str, data=None) -> None:
    """Refuse an index held in the data that points outside what it indexes.

    `pd.factorize` codes a missing label as -1, and NumPy and PyTensor read a negative
    index from the end: an empty grouping cell would silently be fitted as the last
    group. Every integer index into a model variable that is computed from data alone
    (pm.Data, constants) must lie in 0 .. length - 1.
    """
    import numpy as np
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import apply_ancestors, graph_inputs
    from pytensor.tensor.subtensor import AdvancedSubtensor

    outputs = [*model.observed_RVs, *model.deterministics, *model.free_RVs]
    for node in apply_ancestors(outputs):
        if not isinstance(node.op, AdvancedSubtensor):
            continue
        indexed = node.inputs[0]
        for axis, entry in enumerate(node.op.idx_list):
            if not isinstance(entry, int) or entry + 1 >= len(node.inputs):
                continue
            index = node.inputs[entry + 1]
            if index.dtype not in ("int8", "int16", "int32", "int64", "uint8", "uint16"):
                continue
            sources = list(graph_inputs([index]))
            if not all(
                isinstance(v, Constant)
                or (isinstance(v, SharedVariable) and hasattr(v.type, "dtype"))
                for v in sources
            ):
                continue  # an index that depends on parameters is not the data's
            try:
                values = np.asarray(index.eval())
                length = int(indexed.shape[axis].eval())
            except Exception:  # cannot be evaluated from data alone: not ours to judge
                continue
            bad = (values < 0) | (values >= length)
            if not bad.any():
                continue
            data_name = next((v.name for v in sources if v.name), None) or "an index"
            what = getattr(indexed, "name", None) or "a model variable"
            rows = np.flatnonzero(bad.reshape(-1))
            shown = ", ".join(str(r) for r in rows[:10]) + (" ..." if len(rows) > 10 else "")
            first = values.reshape(-1)[rows[0]]
            hint = (
                " (-1 is how pd.factorize codes a missing label: a grouping column has empty cells)"
                if first == -1
                else ""
            )
            missing = missing_values(data) if data is not None else ""
            raise MlmError(
                f"{filename}: build(): '{data_name}' indexes {what} (length {length}) with "
                f"{first} at position(s) {shown}{hint}; mlm refuses it, as it would "
                "silently pick another group"
                + (f"\n  the data have missing values: {missing}" if missing else "")
                + "\n  drop or fill those rows in data.py, or give them a group of their own"
            )
