"""Group terms: effects that vary by a grouping's levels, non-centered (u = z * sigma),
independent with half-normal SDs or correlated through an LKJ Cholesky covariance."""

from __future__ import annotations

from mlm.codegen.body import BuildBody, call, comment
from mlm.codegen.names import joined
from mlm.codegen.priors import prior_arguments
from mlm.errors import MlmError
from mlm.formula import GroupTerm


def group_term(body: BuildBody, group: GroupTerm, name: str) -> list[str]:
    """Write a group term's priors into `body`; return its parts of the linear predictor.

    `name` is the term's parameter suffix (see `names.group_names`).
    """
    index = body.factor(group.factor, False)
    coord = joined(group.factor)
    scales, products = [], []
    for term in group.terms:
        tensors, arrays = body.product(term.variables)
        base = "1" if body.glm else "y_sd"
        scales.append(f"{base} / {arrays}.std()" if arrays else base)
        products.append(tensors)
    unit = "the link scale" if body.glm else "the outcome's SD"
    if not group.correlated:
        (term,), (scale,), (tensors,) = group.terms, scales, products
        what = "an intercept" if term.is_intercept else f"a slope on {term.label}"
        default_sd = f"The SD's half-normal prior has the scale of {unit}" + (
            "." if term.is_intercept else f" per SD of {term.label}."
        )
        body.priors += [
            "",
            *comment(
                f"{group.label}: {what} per level of {group.factor_label}, non-centered "
                "(u = z * sigma) so it samples well even when sigma is near 0."
                + ("" if f"sigma_{name}" in body.given else f" {default_sd}")
            ),
            *body.rv(f"sigma_{name}", "HalfNormal", f"sigma={scale}", kind="sd"),
            f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, dims="{coord}")',
            f'u_{name} = pm.Deterministic("u_{name}", z_{name} * sigma_{name}, dims="{coord}")',
        ]
        return [f"u_{name}[{index}]" + (f" * {tensors}" if tensors else "")]
    return _correlated(body, group, name, index, scales, products)


def _correlated(
    body: BuildBody,
    group: GroupTerm,
    name: str,
    index: str,
    scales: list[str],
    products: list[str],
) -> list[str]:
    """A correlated group term: LKJ Cholesky covariance, u = z @ chol.T."""
    coord = joined(group.factor)
    unit = "the link scale" if body.glm else "the outcome's SD"
    lhs = " and ".join(
        "an intercept" if t.is_intercept else f"a slope on {t.label}" for t in group.terms
    )
    effect = f"{name}_effect"
    labels = ", ".join(f'"{"Intercept" if t.is_intercept else t.label}"' for t in group.terms)
    body.coords.append(f'"{effect}": [{labels}],')
    body.coords.append(f'"{effect}_corr": [{labels}],')
    n = len(group.terms)
    sds = f"and half-normal SDs on the scale of {unit} per SD of each column"
    sd_dist = f"pm.HalfNormal.dist(sigma=np.array([{', '.join(scales)}]), shape={n})"
    body.names.append(f"sigma_{name}")
    prior = body.given.get(f"sigma_{name}")
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
        sd_dist = call(f"{prior.distribution}.dist", prior_arguments(prior, "sd"), f"shape={n}")
    body.priors += [
        "",
        *comment(
            f"{group.label}: {lhs} per level of {group.factor_label}, correlated. The "
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
