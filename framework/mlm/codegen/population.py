"""Population-level terms: the intercept, numeric slopes, and treatment-coded factors and
their interactions, each with its weakly informative prior scaled from the data."""

from __future__ import annotations

from mlm.codegen.body import BuildBody, comment
from mlm.codegen.names import joined
from mlm.errors import MlmError
from mlm.formula import INTERCEPT, Term

# What the linear predictor is, for the families with a link other than the identity.
LINK_SCALE = {
    "bernoulli": "the log-odds",
    "binomial": "the log-odds",
    "poisson": "the log mean count",
    "negbinomial": "the log mean count",
    "gamma": "the log of the mean",
    "beta": "the log-odds of the mean proportion",
    "zero_inflated_poisson": "the log mean count (of the rows that are not structural zeros)",
    "zero_inflated_negbinomial": "the log mean count (of the rows that are not structural zeros)",
}


def reported_intercept(body: BuildBody) -> list[str]:
    """With centred predictors: `Intercept`, the intercept on the data's scale (at 0), as
    lme4 reports it, from the centred one the model samples."""
    if not body.columns.centres:
        return []
    shifts = " - ".join(
        f"b_{joined(term.variables)} * {body.centre(term)}" for term in body.columns.centres
    )
    return [
        *comment(
            f"Intercept: {LINK_SCALE.get(body.spec.family, body.outcome)} when every predictor "
            "is 0 (and at reference levels), as lme4 reports it."
        ),
        f'pm.Deterministic("Intercept", intercept_c - {shifts})',
    ]


def population_term(body: BuildBody, term: Term) -> str:
    """Write the term's prior into `body`; return its part of the linear predictor."""
    spec, glm = body.spec, body.glm
    if term.is_intercept:
        link = LINK_SCALE.get(spec.family)
        if spec.family in ("bernoulli", "binomial"):
            args = "mu=0, sigma=2.5"
            why = (
                "Intercept: the log-odds when every predictor is 0; sd 2.5 spans "
                "probabilities 0.01 to 0.99."
            )
        elif spec.family == "beta":
            args = f"mu=np.log({body.y_mean} / (1 - {body.y_mean})), sigma=2.5"
            why = (
                "Intercept: the log-odds of the mean proportion when every predictor is 0, "
                "centred on the data's."
            )
        elif link is not None:
            args = f"mu=np.log({body.y_mean}), sigma=2.5"
            why = f"Intercept: {link} when every predictor is 0, centred on the data's."
        else:
            args = f"mu={body.y_mean}, sigma=5 * {body.y_sd}"
            why = (
                f"Intercept: {body.outcome} when every predictor is 0 (and at reference "
                "levels); wide, as 0 may lie far from the data."
            )
        if not body.columns.centres:
            body.priors += body.rv("Intercept", "Normal", args, why, var="intercept")
            return "intercept"
        at = ", ".join(f"{term.label} = {centre}" for term, centre in body.columns.centres.items())
        what = link or body.outcome
        if not glm:
            args = f"mu={body.y_mean}, sigma=2.5 * {body.y_sd}"
        why = (
            f"Intercept_centred: {what} at the centres ({at}), where the intercept does not "
            "trade off against the slopes"
            + (f"; around {body.outcome_mean}, 2.5 {body.outcome_sds} wide" if not glm else "")
            + ". A prior given for Intercept replaces this one (as in brms)."
        )
        body.priors += body.rv(
            "Intercept", "Normal", args, why, var="intercept_c", label="Intercept_centred"
        )
        return "intercept_c"
    cats = [v for v in term.variables if v in body.columns.categorical]
    tensors, arrays = body.product(term.variables)
    name = f"b_{joined(term.variables)}"
    scale = "2.5" if glm else f"2.5 * {body.y_sd}"
    if arrays:
        scale = f"{scale} / {body.sd(arrays)}"
        why = (
            f"{name}: weakly informative, 2.5 {'units of the link' if glm else body.outcome_sds}"
            f" per SD of {term.label} (rstanarm's default scale)."
        )
    else:
        why = (
            f"{name}: weakly informative, a level may differ from the reference by about "
            f"2.5 {'units of the link' if glm else body.outcome_sds}."
        )
    if not cats:
        body.priors += body.normal(name, "0", scale, why)
        if term in body.columns.centres:
            centre = body.centre(term)
            return f"{name} * ({tensors} - {centre})"
        return f"{name} * {tensors}"
    code = body.coding[term]
    if len(cats) == 1 and not code[cats[0]] and not tensors:
        # Coded by every level (no intercept): the levels' means, as in lme4.
        index = body.factor((cats[0],), False)
        # On the link scale for a GLM (its prior is centred on 0 there, not on the mean).
        mean = LINK_SCALE.get(spec.family) or (
            "the mean of log(y)" if spec.family == "lognormal" else "the mean outcome"
        )
        why = f"{name}: {mean} at each level of {cats[0]}, weakly informative."
        centre = "0" if glm else body.y_mean
        wide = scale.replace("2.5", "5")
        body.priors += body.normal(name, centre, wide, why, dims=f'"{body.level_coord(cats[0])}"')
        return f"{name}[{index}]"
    if len(cats) == 1 and not code[cats[0]]:
        # A slope at every level (x:a without x), as lme4 codes it.
        index = body.factor((cats[0],), False)
        why = why.replace(
            f"per SD of {term.label}", f"per SD of {arrays} at each level of {cats[0]}"
        )
        body.priors += body.normal(name, "0", scale, why, dims=f'"{body.level_coord(cats[0])}"')
        return f"{name}[{index}] * {tensors}"
    if len(cats) == 2 and not any(code.values()):
        # Every cell of a:b but the first, which the intercept holds (Stata's a#b): as one
        # factor of the levels' combinations.
        (a, b), cells = cats, f"{name}_cell"
        first = "[1:]" if INTERCEPT in spec.terms else ""
        ia, ib = body.factor((a,), False), body.factor((b,), False)
        la, lb = joined((a,)), joined((b,))
        body.coords.append(
            f'"{cells}": [f"{{u}}:{{v}}" for u in {la}_levels for v in {lb}_levels]{first},'
        )
        why = f"{name}: each cell of {term.label}" + (
            " but the first, which the intercept holds." if first else "."
        )
        body.priors += body.normal(name, "0", scale, why, dims=f'"{cells}"')
        effect = f"{name}[{ia} * len({lb}_levels) + {ib}]"
        if first:
            effect = f"pt.concatenate([pt.zeros(1), {name}])[{ia} * len({lb}_levels) + {ib}]"
        return f"{effect} * {tensors}" if tensors else effect
    if not all(code.values()) and len(cats) > 2:
        raise MlmError(
            f"{term.label}: an interaction of {len(cats)} categorical columns without their "
            "lower-order terms is not supported; write them out (a*b*c)"
        )
    indices = [body.factor((c,), code[c]) for c in cats]
    dims = ", ".join(f'"{c}_effect"' if code[c] else f'"{body.level_coord(c)}"' for c in cats)
    dims = f"({dims})" if len(cats) > 1 else dims
    body.priors += body.normal(name, "0", scale, why, dims=dims)
    if len(cats) == 1:
        effect = f"pt.concatenate([pt.zeros(1), {name}])[{indices[0]}]"
    else:
        shape = ", ".join(f"len({joined((c,))}_levels)" for c in cats)
        inner = ", ".join("1:" if code[c] else ":" for c in cats)
        effect = f"pt.set_subtensor(pt.zeros(({shape}))[{inner}], {name})[{', '.join(indices)}]"
    return f"{effect} * {tensors}" if tensors else effect
