"""The data's columns as the formula uses them: numeric, or categorical with its levels.

`classify_columns` is the one place the data are read while writing model.py: it refuses,
with a message saying what to do, a formula that does not fit the data, and otherwise
says how each column enters the model. Of the data's values, only the centres of the
predictors and the statistics the priors are scaled from are written into the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from mlm.errors import MlmError
from mlm.formula import INTERCEPT, SCALED_FAMILIES, Derived, ModelSpec, Reference


@dataclass
class Columns:
    """How each column of the data enters the model."""

    numeric: set[str] = field(default_factory=set)
    categorical: dict[str, str] = field(default_factory=dict)  # column -> reference level
    distinct: dict[str, int] = field(default_factory=dict)  # numeric column -> distinct values
    # Reference levels the formula chose (C(x, Treatment("b")), Stata's ib2.x), as values.
    references: dict[str, object] = field(default_factory=dict)
    derived: dict[str, Derived] = field(default_factory=dict)  # computed column by label
    numeric_dtype: set[str] = field(default_factory=set)  # columns the data hold as numbers
    outcome: tuple | None = None  # a two-level bernoulli response: (failure, success)
    # Population terms of numeric columns only -> the value the model centres them at (their
    # mean, rounded to a tenth of their SD; a term whose mean is within 0.1 SD of 0 is not).
    centres: dict = field(default_factory=dict)
    # Grouping (its factor tuple) -> the median number of rows per level.
    rows_per_level: dict = field(default_factory=dict)
    group_levels: dict = field(default_factory=dict)  # grouping -> its number of levels
    # Grouping -> information.Information of its level means; (grouping, a slope's
    # variables) -> (info, info_low) of that slope (set by writer.py from
    # mlm/codegen/information.py).
    information: dict = field(default_factory=dict)
    # Grouping -> the groupings it nests in: each of its levels lies within one level of
    # theirs, and they have fewer levels (batch:cask in batch; a pupil's class in school).
    nests_in: dict = field(default_factory=dict)
    # Grouping -> the population terms (not the intercept) that are constant within each of
    # its levels (a subject's treatment arm, within subject).
    constant_within: dict = field(default_factory=dict)
    # Numeric columns whose values look like category codes (1, 2, 3) -> those values:
    # fitted as one slope, as lme4 does; model.py and `mlm new` say so (see `codes_of`).
    codes: dict = field(default_factory=dict)


def codes_of(values) -> tuple[float, ...] | None:
    """The values of a numeric column if they look like category codes: 3 to 6 consecutive
    integers from 0 or 1 (nlme's BodyWeight codes its diets 1, 2, 3), else None. A 0/1
    dummy, ages 8-14 or days 0-9 are quantities, as a slope reads them."""
    import numpy as np

    values = np.unique(np.asarray(values, dtype=float))
    values = values[np.isfinite(values)]
    if not 3 <= len(values) <= 6 or values[0] not in (0, 1):
        return None
    if not (values == values[0] + np.arange(len(values))).all():
        return None
    return tuple(float(v) for v in values)


def codes_note(column: str, codes) -> str:
    """What model.py and `mlm new` say of a column whose values `codes_of` found."""
    shown = ", ".join(f"{v:g}" for v in codes)
    return (
        f"{column} is fitted as a number, one slope (its values: {shown}); if they code "
        f"categories, write factor({column})"
    )


def centre_of(values) -> float | None:
    """A predictor's centre as a person writes it: its mean rounded to a tenth of its SD
    (age 8-14 -> 11.0), or None when the mean lies within a tenth of an SD of 0 (centred
    already: the intercept and slope then correlate by less than 0.1)."""
    import math

    import numpy as np

    values = np.asarray(values, dtype=float)
    sd = float(values.std())
    if not sd or not np.isfinite(sd):
        return None
    mean = float(values.mean())
    if abs(mean) <= 0.1 * sd:
        return None
    exponent = math.floor(math.log10(0.1 * sd))
    value = round(mean, -exponent)
    return int(value) if exponent >= 0 else value


def term_values(variables, columns: Columns, data):
    """The values of a numeric population term (a product of numeric or computed columns)."""
    import numpy as np

    result = np.ones(len(data))
    for v in variables:
        if v in columns.derived:
            result = result * evaluate(columns.derived[v], data)
        else:
            result = result * data[v].to_numpy(dtype=float)
    return result


_STATISTICS = (".mean()", ".std(ddof=1)", ".std()")


def frozen(derived: Derived, data) -> Derived:
    """`derived` with each statistic of the whole data it computes (scale()'s and
    center()'s mean and SD) written as its value on `data`.

    model.py then standardizes new rows as it standardized the data (R's "safe
    prediction"): `mlm predict` calls build() on the data and new rows together, which a
    mean over all rows would change.
    """

    expression = derived.expression
    while True:
        found = [(expression.find(s), s) for s in _STATISTICS if expression.find(s) >= 0]
        if not found:
            return replace(derived, expression=expression)
        end, statistic = min(found)
        start, depth = end - 1, 0
        while start >= 0:  # the parenthesis that opens what the statistic is taken of
            depth += {")": 1, "(": -1}.get(expression[start], 0)
            if depth == 0:
                break
            start -= 1
        inner = expression[start:end]
        values = evaluate(replace(derived, expression=inner), data)
        ddof = 1 if statistic == ".std(ddof=1)" else 0
        number = values.mean() if statistic == ".mean()" else values.std(ddof=ddof)
        text = f"{float(number):.10g}"  # to 10 significant digits
        text = f"({text})" if text.startswith("-") else text
        expression = expression[:start] + text + expression[end + len(statistic) :]


def evaluate(derived: Derived, data):
    """A computed column's values on `data`, as model.py computes them."""
    import numpy as np

    arrays = {c: data[c].to_numpy(dtype=float) for c in derived.columns}
    with np.errstate(all="ignore"):
        values = eval(derived.expression, {"np": np}, arrays)
    return np.broadcast_to(np.asarray(values, dtype=float), (len(data),))


def missing_in(data, name: str) -> str:
    """Where column `name` of `data` has missing values, in words ("" if nowhere)."""
    if not data[name].isna().any():
        return ""
    rows = data.index[data[name].isna().to_numpy()]
    shown = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
    return (
        f"column {name!r} has {len(rows)} missing value(s), at rows [{shown}] (rows counted "
        "from 0 after the header)"
    )


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
        if said := missing_in(data, name):
            raise MlmError(
                f"{said}; drop or fill them in data.py's load() (or the file it reads) and "
                "run this again"
            )
    columns = Columns(derived={d.label: frozen(d, data) for d in spec.derived})
    columns.numeric_dtype = {
        name
        for name in spec.variables
        if pd.api.types.is_numeric_dtype(data[name])
        and not isinstance(data[name].dtype, pd.CategoricalDtype)
    }
    slopes = {v for g in spec.groups for t in g.terms for v in t.variables}
    used = (
        {v for t in spec.terms for v in t.variables}
        | slopes
        | {v for t in spec.sigma or () for v in t.variables}
    )
    for name in sorted(used):
        if name in columns.derived:
            derived = columns.derived[name]
            for column in derived.columns:
                if column not in columns.numeric_dtype:
                    raise MlmError(f"{name}: column {column!r} is not numeric")
            values = evaluate(derived, data)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise MlmError(
                    f"{name} is not finite at rows {data.index[bad[:10]].tolist()}"
                    + (" and more" if bad.size > 10 else "")
                    + f" (where {', '.join(derived.columns)} = "
                    + ", ".join(str(data[c].iloc[bad[0]]) for c in derived.columns)
                    + "); change the formula, or the rows in data.py"
                )
            columns.numeric.add(name)
            columns.distinct[name] = int(pd.Series(values).nunique())
            continue
        column = data[name]
        if name in columns.numeric_dtype and name not in spec.categorical:
            columns.numeric.add(name)
            columns.distinct[name] = int(column.nunique())
            if (codes := codes_of(column)) is not None:
                columns.codes[name] = codes
            continue
        levels = list(pd.factorize(column, sort=True)[1])
        if len(levels) < 2:
            raise MlmError(
                f"column {name!r} is categorical with one level ({levels[0]!r}): it has no "
                "effect to estimate; drop it from the formula"
            )
        reference = spec.reference(name)
        level = levels[0] if reference is None else _reference_level(reference, column, levels)
        if reference is not None:
            columns.references[name] = level.item() if hasattr(level, "item") else level
        columns.categorical[name] = str(level)
    for name in sorted(columns.numeric):
        values = (
            evaluate(columns.derived[name], data)
            if name in columns.derived
            else data[name].to_numpy(dtype=float)
        )
        if np.ptp(values) == 0:
            where = [g.source for g in spec.groups if any(name in t.variables for t in g.terms)]
            raise MlmError(
                f"{name!r} is constant ({values[0]:g} in every row): a slope "
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
        if spec.family in SCALED_FAMILIES and key.nunique() >= len(data):
            raise MlmError(
                f"{group.source or group.label}: the grouping {group.factor_label!r} has as "
                f"many levels as the data have rows ({len(data)}), so its effects cannot be "
                "told apart from the residual; lme4 refuses this too. Drop the term, or group "
                "by a column whose levels hold several rows each"
            )
    _validate_response(spec, data, columns)
    if INTERCEPT in spec.terms:
        for term in spec.terms:
            if term.is_intercept or any(v in columns.categorical for v in term.variables):
                continue
            centre = centre_of(term_values(term.variables, columns, data))
            if centre is not None:
                columns.centres[term] = centre
    for group in spec.groups:
        counts = _factor_values(data, group.factor).value_counts()
        columns.rows_per_level[group.factor] = float(counts.median())
        columns.group_levels[group.factor] = int(counts.size)
    _nesting(spec, columns, data)
    return columns


def _nesting(spec: ModelSpec, columns: Columns, data) -> None:
    """Fill `columns.nests_in` and `columns.constant_within` from the data."""
    import numpy as np

    factors = list(dict.fromkeys(g.factor for g in spec.groups))
    keys = {f: _factor_values(data, f) for f in factors}
    for factor in factors:

        def constant(values, key=keys[factor]) -> bool:
            """One value per level of `factor`."""
            return nested(key.to_numpy(), np.asarray(values))

        columns.nests_in[factor] = {
            other
            for other in factors
            if other != factor
            and columns.group_levels[other] < columns.group_levels[factor]
            and constant(keys[other])
        }
        columns.constant_within[factor] = {
            term
            for term in spec.terms
            if not term.is_intercept
            and all(
                constant(evaluate(columns.derived[v], data) if v in columns.derived else data[v])
                for v in term.variables
            )
        }


def nested(finer, coarser) -> bool:
    """Whether each level of `finer` lies within one level of `coarser` (one value of
    `coarser` per level of `finer`)."""
    import pandas as pd

    pairs = pd.DataFrame({"f": finer, "c": coarser}).drop_duplicates()
    return not pairs["f"].duplicated().any()


def _reference_level(reference: Reference, column, levels: list):
    """The data's level that `reference` (a value, or Stata's first/last/freq/#k) names."""
    where = reference.source or reference.column
    if reference.position == "first":
        return levels[0]
    if reference.position == "last":
        return levels[-1]
    if reference.position == "freq":
        counts = column.value_counts()
        return max(levels, key=lambda v: (counts[v], -levels.index(v)))
    if reference.position.startswith("#"):
        k = int(reference.position[1:])
        if not 1 <= k <= len(levels):
            raise MlmError(f"{where}: {reference.column!r} has {len(levels)} levels, no #{k}")
        return levels[k - 1]
    for level in levels:
        if level == reference.level or str(level) == str(reference.level):
            return level
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in levels[:20])
    raise MlmError(
        f"{where}: {reference.level!r} is not a level of {reference.column!r}; its levels are "
        f"{shown}" + (" ..." if len(levels) > 20 else "")
    )


def _validate_response(spec: ModelSpec, data, columns: Columns) -> None:
    """Raise when the response cannot be the outcome of `spec.family`.

    A two-level text or categorical response of a bernoulli model is read as glmer reads
    a two-level factor: its first level (in sorted order; a Categorical's own order) is
    failure, the other success; `columns.outcome` holds the two.
    """
    import numpy as np
    import pandas as pd

    name = spec.response
    y = data[name]
    numeric = pd.api.types.is_numeric_dtype(y) and not isinstance(y.dtype, pd.CategoricalDtype)
    if not numeric and spec.family == "bernoulli":
        levels = list(pd.factorize(y, sort=True)[1])
        if len(levels) != 2:
            shown = ", ".join(repr(v) for v in levels[:5]) + (" ..." if len(levels) > 5 else "")
            raise MlmError(
                f"family bernoulli needs a 0/1 or two-level response; {name!r} has "
                f"{len(levels)} levels ({shown})"
            )
        columns.outcome = tuple(v.item() if hasattr(v, "item") else v for v in levels)
        return
    if not numeric:
        text = pd.to_numeric(y, errors="coerce").isna() & y.notna()
        rows = y.index[text.to_numpy()]
        found = (
            f": {y[rows[0]]!r} at row {rows[0]}"
            + (f" and {len(rows) - 1} more" if len(rows) > 1 else "")
            if len(rows) and len(rows) < len(y)
            else ""
        )
        # (a bernoulli response returned or raised above)
        raise MlmError(
            f"the response {name!r} must be numeric{found} (or, for family bernoulli, have "
            "two levels)"
        )
    values = y.to_numpy(dtype=float)
    if spec.family == "bernoulli" and not np.isin(values, (0, 1)).all():
        raise MlmError(f"family bernoulli needs a 0/1 or two-level response; {name!r} is not")
    counts = spec.family in ("binomial", *COUNT_FAMILIES)
    if counts and ((values < 0).any() or (values != values.round()).any()):
        bad = np.flatnonzero((values < 0) | (values != values.round()))
        rows = data.index[bad[:10]].tolist()
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise MlmError(
            f"family {spec.family} needs counts (integers >= 0) in {name!r}; it has "
            f"{values[bad[0]]:g} at row {rows[0]}"
            + (f" (rows {rows}{more})" if bad.size > 1 else "")
        )
    if spec.family in COUNT_FAMILIES and values.sum() == 0:
        raise MlmError(f"family {spec.family} needs counts, not all 0, in {name!r}")
    if spec.family == "binomial":
        if spec.trials is None:
            raise MlmError(
                "family binomial needs the trials: cbind(successes, failures) ~ ... (lme4) or "
                "binomial(n) (Stata); a 0/1 response is family bernoulli"
            )
        trials = evaluate(spec.trials, data)
        bad = np.flatnonzero((trials != trials.round()) | (trials < values) | (trials < 1))
        if bad.size:
            raise MlmError(
                f"the trials {spec.trials.label} must be whole numbers >= 1 and >= {name}; "
                f"they are not at rows {data.index[bad[:10]].tolist()}"
            )
    if spec.family in ("gamma", "lognormal", "beta"):
        _refuse_outside(spec.family, name, data.index, values)
    if spec.family in SCALED_FAMILIES and np.ptp(values) == 0:
        raise MlmError(f"the response {name!r} is constant")


COUNT_FAMILIES = ("poisson", "negbinomial", "zero_inflated_poisson", "zero_inflated_negbinomial")
# What each positive or proportion family's outcome must be, and what to do when it is not.
SUPPORT = {
    "gamma": (
        "> 0",
        "a gamma model is for positive amounts (brms's hurdle_gamma, not offered by mlm, "
        "models zeros apart)",
    ),
    "lognormal": (
        "> 0",
        "log(y) must exist; for zeros, brms's hurdle_lognormal models them apart (not offered "
        "by mlm)",
    ),
    "beta": (
        "strictly between 0 and 1",
        "a beta model is for proportions in (0, 1); with exact 0s or 1s, brms's "
        "zero_one_inflated_beta (not offered by mlm) or Smithson and Verkuilen's "
        "(y * (n - 1) + 0.5) / n in data.py",
    ),
}


def _refuse_outside(family: str, name: str, index, values) -> None:
    """Raise, naming the rows, when a gamma, lognormal or beta outcome is outside its range."""
    import numpy as np

    inside = (values > 0) & (values < 1) if family == "beta" else values > 0
    bad = np.flatnonzero(~inside)
    if bad.size:
        rule, advice = SUPPORT[family]
        rows = index[bad[:10]].tolist()
        more = f" and {bad.size - 10} more" if bad.size > 10 else ""
        raise MlmError(
            f"family {family} needs {name!r} {rule}; it is not at rows {rows}{more} "
            f"({', '.join(f'{v:g}' for v in values[bad[:3]])}{', ...' if bad.size > 3 else ''}): "
            f"{advice}"
        )


def _factor_values(data, factor: tuple[str, ...]):
    """A grouping's level in each row: one column's value, or several joined by ':'."""
    key = data[factor[0]].astype(str)
    for name in factor[1:]:
        key = key + ":" + data[name].astype(str)
    return key


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)
