"""Population-level terms: the intercept, numeric slopes, and treatment-coded factors and
their interactions, each with its weakly informative prior scaled from the data."""

from __future__ import annotations

from mlm.codegen.body import BuildBody
from mlm.codegen.names import joined
from mlm.formula import Term


def population_term(body: BuildBody, term: Term) -> str:
    """Write the term's prior into `body`; return its part of the linear predictor."""
    spec, glm = body.spec, body.glm
    if term.is_intercept:
        if spec.family == "bernoulli":
            args = "mu=0, sigma=2.5"
            why = (
                "Intercept: the log-odds when every predictor is 0; sd 2.5 spans "
                "probabilities 0.01 to 0.99."
            )
        elif spec.family == "poisson":
            args = "mu=np.log(y.mean()), sigma=2.5"
            why = "Intercept: the log mean count when every predictor is 0, centred on the data's."
        else:
            args = "mu=y.mean(), sigma=5 * y_sd"
            why = (
                "Intercept: the outcome when every predictor is 0 (and at reference levels); "
                "wide, as 0 may lie far from the data."
            )
        body.priors += body.rv("Intercept", "Normal", args, why, var="intercept")
        return "intercept"
    cats = [v for v in term.variables if v in body.columns.categorical]
    tensors, arrays = body.product(term.variables)
    name = f"b_{joined(term.variables)}"
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
        body.priors += body.rv(name, "Normal", f"mu=0, sigma={scale}", why)
        return f"{name} * {tensors}"
    if term.variables == (cats[0],) and body.full_coding == cats[0]:
        # No intercept: this factor's levels all get a coefficient (cell means), as in lme4.
        index = body.factor((cats[0],), False)
        why = f"{name}: the mean outcome at each level of {cats[0]}, weakly informative."
        centre = "0" if glm else "y.mean()"
        args = f"mu={centre}, sigma={scale.replace('2.5', '5')}"
        body.priors += body.rv(name, "Normal", args, why, dims=f'"{cats[0]}"')
        return f"{name}[{index}]"
    indices = [body.factor((c,), True) for c in cats]
    dims = ", ".join(f'"{c}_effect"' for c in cats)
    dims = f"({dims})" if len(cats) > 1 else dims
    body.priors += body.rv(name, "Normal", f"mu=0, sigma={scale}", why, dims=dims)
    if len(cats) == 1:
        effect = f"pt.concatenate([pt.zeros(1), {name}])[{indices[0]}]"
    else:
        shape = ", ".join(f"len({c}_levels)" for c in cats)
        inner = ", ".join("1:" for _ in cats)
        effect = f"pt.set_subtensor(pt.zeros(({shape}))[{inner}], {name})[{', '.join(indices)}]"
    return f"{effect} * {tensors}" if tensors else effect
