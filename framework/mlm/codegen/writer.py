"""The model writer: a `ModelSpec` and the data it describes -> model.py source text.

The result is the PyMC a careful person writes by hand: named coords from the data's
levels (computed inside build(), so the model follows the data when they change),
vectorized indexing, group effects centred or non-centred as their levels' rows suggest,
numeric predictors centred (the intercept reported at 0, as lme4 reports it), one
commented line per prior, formatted by ruff. The data are read only to validate the
formula against them and to classify their columns (columns.py); no value is hard-coded
but the centres of the predictors, which must stay fixed for predictions, and the data's
statistics the priors are scaled from (the outcome's mean and SD, each predictor's SD),
written as numbers so that new data values keep the model's graph and reuse its compiled
form (`_statistics`; mlm.scales warns when the data move away from them). Each kind of
term writes its own lines (population.py, groups.py, residual.py); a `--prior` replaces
one parameter's default prior (priors.py).
"""

from __future__ import annotations

import re
import textwrap

from mlm.codegen.body import BuildBody, comment
from mlm.codegen.columns import Columns, classify_columns
from mlm.codegen.formatting import formatted
from mlm.codegen.groups import centring, group_term, written_order
from mlm.codegen.information import group_information
from mlm.codegen.names import group_names
from mlm.codegen.population import population_term, reported_intercept
from mlm.codegen.residual import constant_parameters, level_column, varying_sigma
from mlm.codegen.response import LIKELIHOODS, describe, outcome
from mlm.errors import MlmError
from mlm.formula import INTERCEPT, STATA_COMMANDS, ModelSpec, lme4_formula


def model_source(spec: ModelSpec, data) -> str:
    """model.py for `spec`, validated against `data` (a DataFrame with the columns it names)."""
    columns = classify_columns(spec, data)
    columns.information = group_information(spec, columns, data)
    if not spec.terms and not spec.groups:
        raise MlmError(f"{spec.source!r} has no terms: write at least 1, as in 'y ~ 1'")
    body = BuildBody(spec, columns, data)
    outcome(body)
    for term in spec.terms:
        body.rows[term] = population_term(body, term)
    body.priors += reported_intercept(body)
    body.means = centring(body)
    names = dict(zip(spec.groups, group_names(spec.groups), strict=True))
    group_rows = {}
    for group in written_order(body):
        group_rows[group] = group_term(body, group, names[group])
        body.rows[group] = group_rows[group][0]
    linear = [body.rows[t] for t in spec.terms]
    linear += [row for group in spec.groups for row in group_rows[group]]
    log_sigma, sigma = varying_sigma(body)

    family = spec.family
    body.data_lines += [
        "# The outcome in pm.Data too, as the predictors are: new values of either reuse",
        "# the compiled model.",
        f'y_ = pm.Data("{spec.response}_obs", y, dims="obs")',
    ]
    inner = [*body.data_lines, "", "# Population-level effects.", *body.priors, ""]
    inner += constant_parameters(body)
    _refuse_unknown_priors(spec, body.names)
    predictor = "eta" if body.glm else "mu"
    if family == "binomial" and spec.trials is None:
        raise MlmError("family binomial needs the trials: cbind(successes, failures) ~ ...")
    inner.append(f"{predictor} = (" + " + ".join(linear) + ")")
    if log_sigma is not None:
        inner.append(f"sigma = pm.math.exp({log_sigma})")
    likelihood = LIKELIHOODS[family].format(y=spec.response, sigma=sigma)
    inner.append(f'{likelihood}, observed=y_, dims="obs")')

    prep = [*body.prep, *_centring(body), "coords = {", *body.coords, "}"]
    prep, inner = _statistics(body, data, prep, inner)
    # What the code uses, comments aside (`y_sd = 0.97  # np.log(y).std()` needs no numpy).
    code = "\n".join(
        line.split("  # ")[0] for line in prep + inner if not line.lstrip().startswith("#")
    )
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
            _docstring(spec, columns, describe(body)),
            "",
            *imports,
            "",
            "",
            "def build(data):",
            f'    """{_summary(spec)}"""',
            *("    " + line if line else "" for line in prep),
            "",
            "    with pm.Model(coords=coords) as model:",
            *("        " + line if line else "" for line in inner),
            "",
            "    return model",
            "",
        ]
    )
    return formatted(source)


def _centring(body: BuildBody) -> list[str]:
    """The constants the numeric population predictors are centred at, with why."""
    if not body.centre_lines:
        return []
    return [
        *comment(
            "Centred predictors, as brms and rstanarm centre them: the model samples the "
            "intercept at these values (the means, rounded, of the data this file was written "
            "for), where it does not trade off against the slopes, and reports Intercept at 0 "
            "as lme4 does. They are constants so that predictions for new rows use the same "
            "ones; any values give the same likelihood, and 0 undoes the centring."
        ),
        *body.centre_lines,
    ]


def _statistics(
    body: BuildBody, data, prep: list[str], inner: list[str]
) -> tuple[list[str], list[str]]:
    """build()'s lines with the statistics the priors are scaled from written as numbers.

    Each is computed here as build() would compute it (its lines before the model run on
    `data`), and written to 4 significant figures with the expression beside it: a number a
    person can read and edit, as close to the expression's as a prior scale needs to be. In
    comments, a statistic the code does not use (a default that --prior replaced) is shown
    as its expression.
    """

    code = [line for line in inner if not line.lstrip().startswith("#")]
    used = {
        name: expression
        for name, expression in body.stats.items()
        if any(re.search(rf"\b{name}\b", line) for line in code)
    }
    for name, expression in body.stats.items():
        if name not in used:
            inner = [
                re.sub(rf"\b{name}\b", expression, line) if line.lstrip().startswith("#") else line
                for line in inner
            ]
    if not used:
        return prep, inner
    values = {name: body.value(name) for name in used}
    what = {"y_mean": body.outcome_mean, "y_sd": body.outcome_sd}
    lines = comment(
        "Prior scales from the data, as rstanarm's defaults: computed from the "
        f"{len(data)} rows this file was written for by the expression beside each, and "
        "written as numbers so that new data values reuse the compiled model. If the data "
        "change much (`mlm run` warns at a factor of 2), put the new values here or write "
        "this file anew: mlm generate model --formula ... --force."
    )
    for name, expression in used.items():
        about = f": {what[name]}" if name in what else ""
        lines.append(f"{name} = {values[name]:.4g}  # {expression}{about}")
    return [*prep, *lines], inner


def _refuse_unknown_priors(spec: ModelSpec, names: list[str]) -> None:
    """Raise when a --prior names no parameter of the model, listing those it has."""
    unknown = [p for p in spec.priors if p.name not in names]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0].name, names, n=1)
        raise MlmError(
            f"--prior {unknown[0].source!r}: this model has no parameter {unknown[0].name!r}"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; its parameters are: {', '.join(names)}"
        )


def written_family(source: str) -> str | None:
    """The family a model.py that `model_source` wrote names in its docstring (None for
    any other file): the one thing read back from the text written below."""
    found = re.search(
        r"\A\"\"\"Model: .*?^Written by `mlm` from .*?^family (\w+)", source, re.M | re.S
    )
    return found.group(1) if found else None


def _docstring(spec: ModelSpec, columns: Columns, family: str) -> str:
    lme4 = _wrapped_formula(lme4_formula(spec, columns.numeric_dtype, columns.references))
    if spec.source.split(" ", 1)[0] in STATA_COMMANDS:
        written = ["Written by `mlm` from the Stata command", "", *_wrapped_formula(spec.source)]
        written += ["", "which lme4 writes as", "", *lme4]
    else:
        written = ["Written by `mlm` from the formula (lme4 syntax)", "", *lme4]
    lines = ['"""Model: build(data) returns the PyMC model.', "", *written]
    by_level = spec.sigma is not None and any(p.name == "sigma" for p in spec.priors)
    column = level_column(spec.sigma) if by_level else None
    if by_level:
        lines += [f"    sigma: one per level of {column}"] if column else []
    elif spec.sigma:
        sigma = " + ".join(t.label for t in spec.sigma if not t.is_intercept)
        sigma = sigma if INTERCEPT in spec.sigma else f"0 + {sigma}"
        lines.append(f"    log(sigma) ~ {sigma}")
    lines += [
        "",
        *textwrap.wrap(f"{family} It is plain PyMC and yours to edit: mlm never rewrites it.", 88),
    ]
    coded = {v for t in spec.terms for v in t.variables}
    coded |= {v for g in spec.groups for t in g.terms for v in t.variables}
    if not by_level:
        coded |= {v for t in spec.sigma or () for v in t.variables}
    coded = {c: r for c, r in columns.categorical.items() if c in coded}
    if coded:
        refs = ", ".join(
            f"{c} -> {r!r}"
            + (f" (chosen by {spec.reference(c).source})" if c in columns.references else "")
            for c, r in sorted(coded.items())
        )
        chosen = ", unless the formula chose one" if columns.references else ""
        lines += [
            "",
            *textwrap.wrap(
                "Categorical columns use treatment coding, as lme4 does: the reference level "
                f"(the first in sorted order{chosen}) gets no coefficient, each other level's "
                f"is its difference from it (with the data it was written for: {refs}).",
                88,
            ),
        ]
    computed = [d for d in spec.derived if any(d.label in t.variables for t in _terms(spec))]
    if computed:
        lines += [
            "",
            *textwrap.wrap(
                "Computed columns, as the formula writes them: "
                + "; ".join(f"{d.label} is {d.name}" for d in computed)
                + ".",
                88,
            ),
        ]
    for note in spec.notes:
        lines += ["", *textwrap.wrap(note[0].upper() + note[1:] + ".", 88)]
    if spec.groups:
        lines += [
            "",
            *textwrap.wrap(
                "Each group term is centred (u ~ Normal(0, sigma)) when each level's data say "
                "more about its effect than the population distribution does, and "
                "non-centred (u = z * sigma, the cure for divergences when a group SD is "
                "small) when they may not; the comment above it says which and why, with the "
                "numbers, and how to flip it. Priors are weakly informative and scaled from "
                "the data, as commented beside each; change them on their lines.",
                88,
            ),
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


def _terms(spec: ModelSpec):
    return [*spec.terms, *(t for g in spec.groups for t in g.terms), *(spec.sigma or ())]


def _wrapped_formula(formula: str) -> list[str]:
    """The formula's lines in the docstring, broken after a `+` when it is long."""
    lines = textwrap.wrap(
        formula, 84, break_long_words=False, break_on_hyphens=False, subsequent_indent="    "
    )
    return [f"    {line}" for line in lines]
