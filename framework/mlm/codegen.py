"""Code generation: a `ModelSpec` and the data it describes -> model.py source text.

The result is the PyMC a careful person writes by hand: named coords from the data's
levels (computed inside build(), so the model follows the data when they change),
vectorized indexing, non-centered group effects, one commented line per prior, formatted
by ruff (a dependency of mlm; without it the code is valid but not line-wrapped). The
data are read here only to check the formula against them and to pick numeric or
categorical handling per column; no value is hard-coded. A `--prior` (`spec.priors`)
replaces one parameter's default prior; PyMC is asked, lazily, whether the distribution
exists and takes the arguments given.
"""

from __future__ import annotations

import keyword
import re
import subprocess
import sys
from dataclasses import dataclass, field

from mlm.errors import MlmError
from mlm.formula import INTERCEPT, GroupTerm, ModelSpec, Prior, Term, lme4_formula

# Names the generated build() uses itself; a column with one of them gets a suffix.
RESERVED = {
    "data",
    "model",
    "coords",
    "mu",
    "eta",
    "sigma",
    "sigma2",
    "nu",
    "y_sd",
    "np",
    "pd",
    "pm",
    "pt",
    "intercept",
    "build",
}
LINKS = {"gaussian": "identity", "student_t": "identity", "bernoulli": "logit", "poisson": "log"}


@dataclass
class _Columns:
    """How each column of the data enters the model."""

    numeric: set[str] = field(default_factory=set)
    categorical: dict[str, str] = field(default_factory=dict)  # column -> reference level
    distinct: dict[str, int] = field(default_factory=dict)  # numeric column -> distinct values


# A residual SD per level of a numeric --sigma column: at most this many distinct values.
MAX_SIGMA_LEVELS = 20


def check(spec: ModelSpec, data) -> _Columns:
    """Raise a clear MlmError when the formula does not fit the data; else classify columns."""
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
    columns = _Columns()
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
                f"{_bar(group)}: the grouping {group.factor_label!r} has one level "
                f"({key.iloc[0]!r}), so there is no between-group variation to estimate; "
                "drop the term or group by a column with several levels"
            )
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
    return columns


def _factor_values(data, factor: tuple[str, ...]):
    key = data[factor[0]].astype(str)
    for name in factor[1:]:
        key = key + ":" + data[name].astype(str)
    return key


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


# names in the generated code -------------------------------------------------------------


def _py(column: str) -> str:
    """The Python name of a column's numpy array."""
    return f"{column}_col" if column in RESERVED or keyword.iskeyword(column) else column


def _comment(text: str, width: int = 88) -> list[str]:
    """`text` as comment lines that fit beside the generated code's indentation."""
    import textwrap

    return ["# " + line for line in textwrap.wrap(text, width - 2)]


def _joined(names: tuple[str, ...]) -> str:
    return "_by_".join(names)


# priors set with --prior -------------------------------------------------------------------


def prior_arguments(prior: Prior, kind: str) -> str:
    """The keyword arguments of `prior`'s PyMC distribution, checked, as code: "alpha=1, beta=1".

    `kind` is what the parameter is: "real", "positive" (nu) or "sd" (a standard deviation,
    the only kind whose prior may be on its variance).
    """
    import inspect

    import numpy as np
    import pymc as pm

    where = f"--prior {prior.source!r}"
    if prior.variance and kind != "sd":
        raise MlmError(
            f"{where}: only a standard deviation (sigma, sigma_*) takes a prior on its "
            f"variance; {prior.name} is not one. Write {prior.name}=..."
        )
    dist = getattr(pm, prior.distribution, None)
    if not _is_distribution(dist, pm):
        import difflib

        known = [n for n in dir(pm) if _is_distribution(getattr(pm, n, None), pm)]
        close = difflib.get_close_matches(prior.distribution, known, n=3)
        raise MlmError(
            f"{where}: PyMC has no distribution {prior.distribution!r}"
            + (f"; did you mean {' or '.join(close)}?" if close else "")
        )
    if issubclass(dist, pm.Discrete):
        raise MlmError(
            f"{where}: {prior.distribution} is discrete; a parameter's prior must be continuous"
        )
    named = [
        p
        for p in inspect.signature(dist.dist).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    try:
        bound = inspect.Signature(named).bind(*prior.args, **dict(prior.kwargs))
    except TypeError as exc:
        raise MlmError(
            f"{where}: {prior.distribution} takes {', '.join(p.name for p in named)}; {exc}"
        ) from None
    arguments = ", ".join(f"{k}={v!r}" for k, v in bound.arguments.items())
    shown = f"{prior.distribution}({arguments})"
    try:
        rv = dist.dist(**bound.arguments)
    except Exception as exc:
        raise MlmError(f"{where}: PyMC cannot make {shown}: {exc}") from None
    if getattr(rv.owner.op, "ndim_supp", 0):
        raise MlmError(f"{where}: {prior.distribution} is multivariate; give a univariate prior")
    if kind != "real" and np.isfinite(pm.logp(rv, -1.0).eval()).any():
        what = {"sd": " is a standard deviation and", "positive": ""}[kind]
        if prior.variance:
            what = "^2 is a variance and"
        half = f"Half{prior.distribution}"
        better = ["HalfNormal", "Exponential"]
        if half not in better and _is_distribution(getattr(pm, half, None), pm):
            better.insert(0, half)  # HalfCauchy for Cauchy, HalfStudentT for StudentT
        raise MlmError(
            f"{where}: {prior.name}{what} must be positive, but {shown} puts mass on "
            f"negative values; use a positive distribution such as {', '.join(better)}, "
            "Gamma or Uniform(0, upper)"
        )
    return arguments


def _is_distribution(value, pm) -> bool:
    return isinstance(value, type) and issubclass(value, pm.Distribution)


def _call(distribution: str, *arguments: str) -> str:
    return f"pm.{distribution}({', '.join(a for a in arguments if a)})"


class _Writer:
    """Lines of build()'s body, before and inside the `with pm.Model` block."""

    def __init__(self, spec: ModelSpec, columns: _Columns):
        self.spec = spec
        self.columns = columns
        self.prep: list[str] = []
        self.coords: list[str] = ['"obs": data.index.to_numpy(),']
        self.data_lines: list[str] = []
        self.priors: list[str] = []
        self._data_vars: dict[str, str] = {}  # column or factor key -> tensor name
        self._coords: set[str] = set()
        self.glm = spec.family in ("bernoulli", "poisson")
        self.given = {p.name: p for p in spec.priors}  # --prior, by parameter name
        self.names: list[str] = []  # every parameter a --prior may name, in order
        # Without an intercept, the first categorical main effect is coded by all its levels.
        self.full_coding = None
        if INTERCEPT not in spec.terms:
            mains = [t.variables[0] for t in spec.terms if len(t.variables) == 1]
            self.full_coding = next((v for v in mains if v in columns.categorical), None)

    # parameters ---------------------------------------------------------------------
    def rv(self, name, dist, args, why="", dims="", kind="real", var=None) -> list[str]:
        """`var = pm.DIST("name", ARGS)` under its comment `why`, or the prior --prior gave."""
        self.names.append(name)
        if name in self.given:
            return self.given_prior(name, var or name, dims, kind, f"{dist}({args})")
        dims = f"dims={dims}" if dims else ""
        return [*_comment(why), f"{var or name} = {_call(dist, f'"{name}"', args, dims)}"]

    def given_prior(self, name: str, var: str, dims: str, kind: str, default: str) -> list[str]:
        """The lines of the prior --prior gave `name`, said so in their comment."""
        prior = self.given[name]
        arguments = prior_arguments(prior, kind)
        dims = f"dims={dims}" if dims else ""
        square = var.replace("sigma", "sigma2", 1)
        on = f", on the variance {square} ({name} is its square root)" if prior.variance else ""
        note = _comment(f"{name}: set by --prior '{prior.source}'{on}.")
        note += _comment(f"(mlm's default: {default}.)")  # a line of its own: not broken mid-code
        if not prior.variance:
            return [*note, f"{var} = {_call(prior.distribution, f'"{name}"', arguments, dims)}"]
        return [
            *note,
            f"{square} = {_call(prior.distribution, f'"{square}"', arguments, dims)}",
            f"{var} = {_call('Deterministic', f'"{name}"', f'pm.math.sqrt({square})', dims)}",
        ]

    # data ---------------------------------------------------------------------------
    def level_coord(self, name: str) -> str:
        """The coords of a factor's levels: its name, unless pm.Data holds its values by
        that name (a numeric column), as a dimension may not share a variable's name."""
        return f"{name}_level" if name in self.columns.numeric else name

    def numeric(self, column: str) -> str:
        """The pm.Data tensor of a numeric column."""
        key = ("num", column)
        if key not in self._data_vars:
            name = _py(column)
            self.prep.append(f'{name} = data["{column}"].to_numpy(dtype=float)')
            self.data_lines.append(f'{name}_ = pm.Data("{column}", {name}, dims="obs")')
            self._data_vars[key] = f"{name}_"
        return self._data_vars[key]

    def factor(self, factor: tuple[str, ...], effect_coord: bool) -> str:
        """The pm.Data index of a categorical column or grouping, and its coords."""
        name = _joined(factor)
        key = ("idx", factor)
        if key not in self._data_vars:
            if len(factor) == 1:
                source = f'data["{factor[0]}"]'
            else:
                source = ' + ":" + '.join(f'data["{f}"].astype(str)' for f in factor)
            if effect_coord:
                reference = self.columns.categorical[factor[0]]
                self.prep += _comment(
                    f"{factor[0]}: treatment coding; the first level in sorted order is the "
                    f"reference (now {reference!r}), each other level's effect is its "
                    "difference from it."
                )
            self.prep.append(f"{name}_idx, {name}_levels = pd.factorize({source}, sort=True)")
            # A column that is also a numeric predictor already has `{name}_` for its values.
            var = f"{name}_idx_" if name in self.columns.numeric else f"{name}_"
            self.data_lines.append(f'{var} = pm.Data("{name}_idx", {name}_idx, dims="obs")')
            self._data_vars[key] = var
        coord = f"{name}_effect" if effect_coord else self.level_coord(name)
        if coord not in self._coords:
            self._coords.add(coord)
            levels = f"{name}_levels[1:]" if effect_coord else f"{name}_levels"
            self.coords.append(f'"{coord}": [str(v) for v in {levels}],')
        return self._data_vars[key]

    def product(self, variables: tuple[str, ...]) -> tuple[str, str]:
        """(tensor product of the numeric columns, numpy expression of the same) or ('', '')."""
        numeric = [v for v in variables if v in self.columns.numeric]
        if not numeric:
            return "", ""
        tensors = " * ".join(self.numeric(v) for v in numeric)
        arrays = " * ".join(_py(v) for v in numeric)
        return tensors, arrays if len(numeric) == 1 else f"({arrays})"

    # population terms ---------------------------------------------------------------
    def fixed(self, term: Term) -> str:
        """Write the term's prior; return its contribution to the linear predictor."""
        spec, glm = self.spec, self.glm
        if term.is_intercept:
            if spec.family == "bernoulli":
                args = "mu=0, sigma=2.5"
                why = (
                    "Intercept: the log-odds when every predictor is 0; sd 2.5 spans "
                    "probabilities 0.01 to 0.99."
                )
            elif spec.family == "poisson":
                args = "mu=np.log(y.mean()), sigma=2.5"
                why = (
                    "Intercept: the log mean count when every predictor is 0, centred on the "
                    "data's."
                )
            else:
                args = "mu=y.mean(), sigma=5 * y_sd"
                why = (
                    "Intercept: the outcome when every predictor is 0 (and at reference levels); "
                    "wide, as 0 may lie far from the data."
                )
            self.priors += self.rv("Intercept", "Normal", args, why, var="intercept")
            return "intercept"
        cats = [v for v in term.variables if v in self.columns.categorical]
        tensors, arrays = self.product(term.variables)
        name = f"b_{_joined(term.variables)}"
        scale = "2.5" if glm else "2.5 * y_sd"
        if arrays:
            scale = f"{scale} / {arrays}.std()"
            why = (
                f"{name}: weakly informative, 2.5 {'units of the link' if glm else 'outcome SDs'}"
                f" per SD of {term.label} (rstanarm's default scale)."
            )
        else:
            why = (
                f"{name}: weakly informative, a level may differ from the reference by about "
                f"2.5 {'units of the link' if glm else 'outcome SDs'}."
            )
        if not cats:
            self.priors += self.rv(name, "Normal", f"mu=0, sigma={scale}", why)
            return f"{name} * {tensors}"
        if term.variables == (cats[0],) and self.full_coding == cats[0]:
            # No intercept: this factor's levels all get a coefficient (cell means), as in lme4.
            index = self.factor((cats[0],), False)
            why = f"{name}: the mean outcome at each level of {cats[0]}, weakly informative."
            centre = "0" if glm else "y.mean()"
            args = f"mu={centre}, sigma={scale.replace('2.5', '5')}"
            self.priors += self.rv(name, "Normal", args, why, dims=f'"{cats[0]}"')
            return f"{name}[{index}]"
        indices = [self.factor((c,), True) for c in cats]
        dims = ", ".join(f'"{c}_effect"' for c in cats)
        dims = f"({dims})" if len(cats) > 1 else dims
        self.priors += self.rv(name, "Normal", f"mu=0, sigma={scale}", why, dims=dims)
        if len(cats) == 1:
            effect = f"pt.concatenate([pt.zeros(1), {name}])[{indices[0]}]"
        else:
            shape = ", ".join(f"len({c}_levels)" for c in cats)
            inner = ", ".join("1:" for _ in cats)
            effect = f"pt.set_subtensor(pt.zeros(({shape}))[{inner}], {name})[{', '.join(indices)}]"
        return f"{effect} * {tensors}" if tensors else effect

    # group terms ----------------------------------------------------------------------
    def group(self, group: GroupTerm, name: str) -> list[str]:
        """Write a group term's priors; return its contributions to the linear predictor."""
        index = self.factor(group.factor, False)
        coord = _joined(group.factor)
        scales, products = [], []
        for term in group.terms:
            tensors, arrays = self.product(term.variables)
            base = "1" if self.glm else "y_sd"
            scales.append(f"{base} / {arrays}.std()" if arrays else base)
            products.append(tensors)
        unit = "the link scale" if self.glm else "the outcome's SD"
        lhs = " and ".join(
            "an intercept" if t.is_intercept else f"a slope on {t.label}" for t in group.terms
        )
        if not group.correlated:
            (term,), (scale,), (tensors,) = group.terms, scales, products
            what = "an intercept" if term.is_intercept else f"a slope on {term.label}"
            default_sd = f"The SD's half-normal prior has the scale of {unit}" + (
                "." if term.is_intercept else f" per SD of {term.label}."
            )
            self.priors += [
                "",
                *_comment(
                    f"{_bar(group)}: {what} per level of {group.factor_label}, non-centered "
                    "(u = z * sigma) so it samples well even when sigma is near 0."
                    + ("" if f"sigma_{name}" in self.given else f" {default_sd}")
                ),
                *self.rv(f"sigma_{name}", "HalfNormal", f"sigma={scale}", kind="sd"),
                f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, dims="{coord}")',
                (
                    f'u_{name} = pm.Deterministic("u_{name}", z_{name} * sigma_{name}, '
                    f'dims="{coord}")'
                ),
            ]
            return [f"u_{name}[{index}]" + (f" * {tensors}" if tensors else "")]
        effect = f"{name}_effect"
        labels = ", ".join(f'"{"Intercept" if t.is_intercept else t.label}"' for t in group.terms)
        self.coords.append(f'"{effect}": [{labels}],')
        self.coords.append(f'"{effect}_corr": [{labels}],')
        n = len(group.terms)
        sds = f"and half-normal SDs on the scale of {unit} per SD of each column"
        sd_dist = f"pm.HalfNormal.dist(sigma=np.array([{', '.join(scales)}]), shape={n})"
        self.names.append(f"sigma_{name}")
        prior = self.given.get(f"sigma_{name}")
        if prior is not None:
            if prior.variance:
                raise MlmError(
                    f"--prior {prior.source!r}: sigma_{name} are the SDs of an LKJ covariance, "
                    f"whose prior (sd_dist) is on the SD scale; write sigma_{name}=..."
                )
            sds = (
                f"and SDs with the prior set by --prior '{prior.source}' (mlm's default: "
                f"HalfNormal(sigma=[{', '.join(scales)}]))"
            )
            sd_dist = _call(
                f"{prior.distribution}.dist", prior_arguments(prior, "sd"), f"shape={n}"
            )
        self.priors += [
            "",
            *_comment(
                f"{_bar(group)}: {lhs} per level of {group.factor_label}, correlated. The "
                f"covariance is an LKJ(2) correlation (mildly favouring small correlations) "
                f"{sds}; the effects are non-centered, u = z @ chol.T."
            ),
            (
                f'chol_{name}, corr_{name}, sd_{name} = pm.LKJCholeskyCov("chol_{name}", n={n}, '
                f"eta=2.0, sd_dist={sd_dist}, compute_corr=True, store_in_trace=False)"
            ),
            f'pm.Deterministic("sigma_{name}", sd_{name}, dims="{effect}")',
            f'pm.Deterministic("corr_{name}", corr_{name}, dims=("{effect}", "{effect}_corr"))',
            f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, dims=("{coord}", "{effect}"))',
            (
                f'u_{name} = pm.Deterministic("u_{name}", z_{name} @ chol_{name}.T, '
                f'dims=("{coord}", "{effect}"))'
            ),
        ]
        return [
            f"u_{name}[{index}, {k}]" + (f" * {tensors}" if tensors else "")
            for k, tensors in enumerate(products)
        ]

    # residual scale ---------------------------------------------------------------------
    def log_sigma(self, terms: tuple[Term, ...]) -> str:
        parts = []
        named = " + ".join(t.label for t in terms if not t.is_intercept) or "nothing"
        self.priors += ["", f"# The residual SD varies: log(sigma) is linear in {named}."]
        for term in terms:
            if term.is_intercept:
                why = "log_sigma_Intercept: around the log of the outcome's SD."
                args = "mu=np.log(y_sd), sigma=1"
                self.priors += self.rv("log_sigma_Intercept", "Normal", args, why)
                parts.append("log_sigma_Intercept")
                continue
            cats = [v for v in term.variables if v in self.columns.categorical]
            tensors, arrays = self.product(term.variables)
            name = f"log_sigma_{_joined(term.variables)}"
            scale = f"1 / {arrays}.std()" if arrays else "1"
            why = f"{name}: sigma may change by a factor of about e (2.7) per " + (
                f"SD of {term.label}." if arrays else "level."
            )
            if not cats:
                self.priors += self.rv(name, "Normal", f"mu=0, sigma={scale}", why)
                parts.append(f"{name} * {tensors}")
                continue
            if len(cats) > 1:
                raise MlmError("--sigma: interactions of two categorical columns are not supported")
            index = self.factor((cats[0],), True)
            dims = f'"{cats[0]}_effect"'
            self.priors += self.rv(name, "Normal", f"mu=0, sigma={scale}", why, dims=dims)
            effect = f"pt.concatenate([pt.zeros(1), {name}])[{index}]"
            parts.append(f"{effect} * {tensors}" if tensors else effect)
        column = _level_column(terms)
        if column and (
            column in self.columns.categorical
            or self.columns.distinct.get(column, 0) <= MAX_SIGMA_LEVELS
        ):
            self.names.append(f"sigma (one per level of {column}, in place of log_sigma_*)")
        return " + ".join(parts) or "0"

    def sigma_by_level(self, terms: tuple[Term, ...]) -> str:
        """One residual SD per level of the --sigma column, with the prior --prior gave it.

        Returns the likelihood's sigma: `sigma[column_]`, or `sigma` for `--sigma "~ 1"`.
        """
        prior = self.given["sigma"]
        log_names = [f"log_sigma_{_joined(t.variables) or 'Intercept'}" for t in terms]
        column = _level_column(terms)
        levels = self.columns.distinct.get(column, 0)
        if column is None or (
            column and column not in self.columns.categorical and levels > MAX_SIGMA_LEVELS
        ):
            numeric = f" ({column!r} is numeric, with {levels} distinct values)" if column else ""
            raise MlmError(
                f"--prior {prior.source!r}: a prior on sigma with --sigma means one sigma per "
                "level of its column, which must be one column with a few levels (as in "
                f"'~ condition'); {self.spec.sigma_source!r} is not{numeric}. Set priors on "
                f"{', '.join(log_names)} instead, or make a text column of the levels in data.py"
            )
        clash = [p.source for p in self.spec.priors if p.name.startswith("log_sigma_")]
        if clash:
            raise MlmError(
                f"--prior {prior.source!r} gives one sigma per level, in place of "
                f"{', '.join(log_names)}: drop --prior {', '.join(map(repr, clash))}"
            )
        self.names.append("sigma")
        default = f"log(sigma) linear in {column or '1'}"
        if not column:
            self.priors += ["", *self.given_prior("sigma", "sigma", "", "sd", default)]
            return "sigma"
        index = self.factor((column,), False)
        coord = self.level_coord(column)
        values = f", its {levels} distinct values" if column in self.columns.numeric else ""
        self.priors += [
            "",
            f'# The residual SD: one per level of {column} (coords "{coord}": every level'
            f"{values}).",
            *self.given_prior("sigma", "sigma", f'"{coord}"', "sd", default),
        ]
        return f"sigma[{index}]"


def _level_column(terms: tuple[Term, ...]) -> str | None:
    """The column of a --sigma formula `~ column` ("" for `~ 1`); None for any other formula."""
    rest = [t for t in terms if not t.is_intercept]
    if not rest:
        return ""
    if len(rest) == 1 and len(rest[0].variables) == 1:
        return rest[0].variables[0]
    return None


def _bar(group: GroupTerm) -> str:
    """The group term in lme4 syntax, whichever syntax it was written in."""
    lhs = " + ".join(t.label for t in group.terms)
    if INTERCEPT not in group.terms:
        lhs = f"0 + {lhs}"
    return f"({lhs} | {group.factor_label})"


def _group_names(groups: tuple[GroupTerm, ...]) -> list[str]:
    names = []
    for group in groups:
        base = _joined(group.factor)
        if not group.correlated and not group.terms[0].is_intercept:
            base = f"{base}_{_joined(group.terms[0].variables)}"
        name = base
        if name in names:
            name = f"{base}_{'_'.join(_joined(t.variables) or 'Intercept' for t in group.terms)}"
        names.append(name)
    return names


def model_source(spec: ModelSpec, data) -> str:
    """model.py for `spec`, checked against `data` (a DataFrame with the columns it names)."""
    columns = check(spec, data)
    if not spec.terms and not spec.groups:
        raise MlmError(f"{spec.source!r} has no terms: write at least 1, as in 'y ~ 1'")
    w = _Writer(spec, columns)
    w.prep.append(f'y = data["{spec.response}"].to_numpy(dtype=float)')
    linear = [w.fixed(t) for t in spec.terms]
    for group, name in zip(spec.groups, _group_names(spec.groups), strict=True):
        linear += w.group(group, name)
    log_sigma, sigma = None, "sigma"
    if spec.sigma and "sigma" in w.given:
        sigma = w.sigma_by_level(spec.sigma)
    elif spec.sigma:
        log_sigma = w.log_sigma(spec.sigma)

    family = spec.family
    w.data_lines += [
        "# The outcome in pm.Data too: a refit after the data change reuses the compiled model.",
        f'y_ = pm.Data("{spec.response}_obs", y, dims="obs")',
    ]
    inner = [*w.data_lines, "", "# Population-level effects.", *w.priors, ""]
    if family in ("gaussian", "student_t") and spec.sigma is None:
        why = "The residual SD; its prior mean is the outcome's SD."
        inner += w.rv("sigma", "Exponential", "lam=1 / y_sd", why, kind="sd")
    if family == "student_t":
        why = "Degrees of freedom of the t residuals (Juarez and Steel's prior)."
        inner += w.rv("nu", "Gamma", "alpha=2, beta=0.1", why, kind="positive")
    unknown = [p for p in spec.priors if p.name not in w.names]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0].name, w.names, n=1)
        raise MlmError(
            f"--prior {unknown[0].source!r}: this model has no parameter {unknown[0].name!r}"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; its parameters are: {', '.join(w.names)}"
        )
    predictor = "mu" if family in ("gaussian", "student_t") else "eta"
    inner.append(f"{predictor} = (" + " + ".join(linear) + ")")
    if log_sigma is not None:
        inner.append(f"sigma = pm.math.exp({log_sigma})")
    likelihood = {
        "gaussian": f'pm.Normal("{spec.response}", mu=mu, sigma={sigma}',
        "student_t": f'pm.StudentT("{spec.response}", nu=nu, mu=mu, sigma={sigma}',
        "bernoulli": f'pm.Bernoulli("{spec.response}", logit_p=eta',
        "poisson": f'pm.Poisson("{spec.response}", mu=pm.math.exp(eta)',
    }[family]
    inner.append(f'{likelihood}, observed=y_, dims="obs")')

    body = [*w.prep, "coords = {", *w.coords, "}"]
    if any("y_sd" in line for line in inner if not line.startswith("#")):
        body += [
            "# Prior scales follow the data, as rstanarm's defaults do: y_sd is the outcome's SD.",
            "y_sd = y.std()",
        ]
    code = "\n".join(body + inner)
    imports = [
        line
        for line, alias in (
            ("import numpy as np", "np."),
            ("import pandas as pd", "pd."),
            ("import pymc as pm", "pm."),
            ("import pytensor.tensor as pt", "pt."),
        )
        if alias in code
    ]
    source = "\n".join(
        [
            _docstring(spec, columns),
            "",
            *imports,
            "",
            "",
            "def build(data):",
            f'    """{_summary(spec)}"""',
            *("    " + line if line else "" for line in body),
            "",
            "    with pm.Model(coords=coords) as model:",
            *("        " + line if line else "" for line in inner),
            "",
            "    return model",
            "",
        ]
    )
    return formatted(source)


def _docstring(spec: ModelSpec, columns: _Columns) -> str:
    link = LINKS[spec.family]
    lines = [
        '"""Model: build(data) returns the PyMC model.',
        "",
        "Written by `mlm` from the formula (lme4 syntax)",
        "",
        f"    {lme4_formula(spec)}",
    ]
    by_level = spec.sigma is not None and any(p.name == "sigma" for p in spec.priors)
    level_column = _level_column(spec.sigma) if by_level else None
    if by_level:
        lines += [f"    sigma: one per level of {level_column}"] if level_column else []
    elif spec.sigma:
        sigma = " + ".join(t.label for t in spec.sigma if not t.is_intercept)
        sigma = sigma if INTERCEPT in spec.sigma else f"0 + {sigma}"
        lines.append(f"    log(sigma) ~ {sigma}")
    lines += [
        "",
        f"family {spec.family}" + ("" if link == "identity" else f" with a {link} link") + ". "
        "It is plain PyMC and yours to edit: mlm never rewrites it.",
    ]
    import textwrap

    coded = {v for t in spec.terms for v in t.variables}
    if not by_level:
        coded |= {v for t in spec.sigma or () for v in t.variables}
    coded = {c: r for c, r in columns.categorical.items() if c in coded}
    if coded:
        refs = ", ".join(f"{c} -> {r!r}" for c, r in sorted(coded.items()))
        lines += [
            "",
            *textwrap.wrap(
                "Categorical columns use treatment coding: the first level in sorted order is "
                "the reference and gets no coefficient (with the data it was written for: "
                f"{refs}).",
                88,
            ),
        ]
    if spec.groups:
        lines += [
            "",
            "Group effects are non-centered (u = z * sigma): the usual cure for divergences",
            "when a group SD is small. Priors are weakly informative and scaled from the",
            "data, as commented beside each; change them on their lines.",
        ]
    if spec.priors:
        lines += [
            "",
            "Priors set by --prior (the others are mlm's defaults, commented beside each):",
            "",
            *(f"    {p.source}" for p in spec.priors),
        ]
    lines.append('"""')
    return "\n".join(lines)


def _summary(spec: ModelSpec) -> str:
    fixed = [t.label for t in spec.terms if not t.is_intercept]
    text = f"The model of {spec.response}" + (f" on {', '.join(fixed)}" if fixed else "")
    factors = list(dict.fromkeys(g.factor_label for g in spec.groups))
    if factors:
        text += f", with effects varying by {', '.join(factors)}"
    return text + "."


def formatted(source: str) -> str:
    """`source` run through `ruff format` when ruff is installed, else as it is."""
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "format",
                "--isolated",
                "--line-length",
                "100",
                "--stdin-filename",
                "model.py",
                "-",
            ],
            input=source,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return source
    if done.returncode != 0:
        if "No module named ruff" in done.stderr:
            return source
        raise MlmError(f"mlm generated code ruff cannot format (please report it):\n{done.stderr}")
    return done.stdout


# the other files of a generated project -----------------------------------------------------


def data_source(filename: str) -> str:
    """data.py that reads data/FILENAME as it is."""
    return formatted(f'''"""Data: load() returns the analysis data set as a pandas DataFrame.

It reads data/{filename}, copied there by `mlm new --data`. Derive columns the model
needs here (a 0/1 code of a level, a log, a centred predictor); mlm re-runs everything
downstream only when the DataFrame load() returns changes.
"""

from pathlib import Path

import pandas as pd

DATA_FILE = Path(__file__).parent / "data" / "{filename}"


def load():
    """The rows of data/{filename}, one per observation."""
    return pd.read_csv(DATA_FILE)
''')


def graphics_source(spec: ModelSpec) -> str:
    """graphics.py with figures that fit any generated model of `spec`."""
    response = spec.response
    group_figure = (
        '''

def group_effects(idata):
    """Each group effect u_* (caterpillar plots), sorted, with 89% intervals."""
    posterior = idata["posterior"].to_dataset()
    effects = [name for name in posterior.data_vars if name.startswith("u_")]
    rows = [(name, label, values) for name in effects for label, values in _cells(posterior[name])]
    fig, axes = plt.subplots(1, len(effects), figsize=(4.5 * len(effects), 0.25 * len(rows) + 2))
    for ax, name in zip(np.atleast_1d(axes), effects):
        cells = [(label, _interval(values)) for n, label, values in rows if n == name]
        cells.sort(key=lambda cell: cell[1][0])
        y = np.arange(len(cells))
        ax.hlines(y, [c[1][1] for c in cells], [c[1][2] for c in cells], color="C1")
        ax.plot([c[1][0] for c in cells], y, "o", color="C1", markersize=3)
        ax.axvline(0, color="0.6", linestyle="--")
        ax.set_yticks(y, [label for label, _ in cells], fontsize=6)
        ax.set_title(name)
    fig.suptitle("Group effects, 89% intervals")
    fig.tight_layout()
    return fig
'''
        if spec.groups
        else ""
    )
    return formatted(f'''"""Graphics: each public function draws one figure and returns it.

mlm saves `name()`'s figure as figures/name.png. Ask for what you need by parameter
name: `idata` (the trace), `data` (the DataFrame), `model`, `project`. Editing one
function redraws only its figure; no function here ever resamples the model.
"""

import matplotlib.pyplot as plt
import numpy as np


def _interval(draws, prob=0.89):
    """Posterior mean and equal-tailed interval over chains and draws."""
    values = np.asarray(draws).reshape(-1)
    tail = (1 - prob) / 2
    return values.mean(), np.quantile(values, tail), np.quantile(values, 1 - tail)


def _cells(da):
    """(label, draws) for each cell of a variable beyond its chain and draw dimensions."""
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return [(da.name, da)]
    stacked = da.stack(cell=extra)
    labels = [", ".join(map(str, np.atleast_1d(c))) for c in stacked["cell"].to_numpy()]
    return [(f"{{da.name}}[{{label}}]", stacked.isel(cell=i)) for i, label in enumerate(labels)]


def coefficients(idata):
    """Posterior means and 89% intervals of every coefficient, SD and correlation."""
    posterior = idata["posterior"].to_dataset()
    rows = [
        cell
        for name in posterior.data_vars
        if not name.startswith(("u_", "z_"))
        for cell in _cells(posterior[name])
    ]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    stats = np.array([_interval(values) for _, values in rows])
    ax.hlines(y, stats[:, 1], stats[:, 2], color="C0", linewidth=2)
    ax.plot(stats[:, 0], y, "o", color="C0")
    ax.axvline(0, color="0.6", linestyle="--", linewidth=1)
    ax.set_yticks(y, [label for label, _ in rows])
    ax.set_title("Posterior means and 89% intervals")
    fig.tight_layout()
    return fig
{group_figure}

def posterior_predictive(idata, data):
    """Observed {response} against 50 replicated data sets from the posterior predictive."""
    replicated = idata["posterior_predictive"]["{response}"].stack(sample=("chain", "draw"))
    observed = data["{response}"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    spread = observed.max() - observed.min() or 1.0
    bins = np.linspace(observed.min() - 0.2 * spread, observed.max() + 0.2 * spread, 40)
    for i in np.linspace(0, replicated.sizes["sample"] - 1, 50).astype(int):
        ax.hist(replicated.isel(sample=i), bins=bins, histtype="step", color="C0", alpha=0.15)
    ax.hist(observed, bins=bins, histtype="step", color="k", linewidth=2, label="observed")
    ax.set_xlabel("{response}")
    ax.set_ylabel("observations")
    ax.set_title("Posterior predictive check")
    ax.legend()
    fig.tight_layout()
    return fig
''')


def tests_source(spec: ModelSpec) -> str:
    """tests/test_model.py for a generated project."""
    columns = ", ".join(f'"{c}"' for c in spec.variables)
    doc = '"""Tests of this analysis: run them with `pytest` from the project folder."""'
    return formatted(f"""{doc}

import data
import model
import numpy as np
import pymc as pm

COLUMNS = [{columns}]


def test_data_has_the_columns_the_model_uses():
    frame = data.load()
    assert set(COLUMNS) <= set(frame.columns)
    assert frame[COLUMNS].notna().all().all()


def test_model_has_finite_log_probability_at_its_initial_point():
    built = model.build(data.load())
    assert all(np.isfinite(v) for v in built.point_logps().values())


def test_model_samples_without_divergences():
    with model.build(data.load()):
        idata = pm.sample(draws=200, tune=300, chains=2, random_seed=1, progressbar=False)
    assert int(idata["sample_stats"]["diverging"].sum()) <= 3
""")
