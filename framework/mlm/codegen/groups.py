"""Group terms: effects that vary by a grouping's levels, non-centered (u = z * sigma),
independent with half-normal SDs or correlated through an LKJ Cholesky covariance.

A categorical column in a group term varies as lme4 codes it: by treatment contrasts
beside the intercept, by every level without it; its columns are built in build() as a
design matrix (`X_NAME`), one column per effect.
"""

from __future__ import annotations

from mlm.codegen.body import BuildBody, call, codings, comment
from mlm.codegen.names import joined
from mlm.codegen.priors import prior_arguments
from mlm.errors import MlmError
from mlm.formula import GroupTerm


def group_term(body: BuildBody, group: GroupTerm, name: str) -> list[str]:
    """Write a group term's priors into `body`; return its parts of the linear predictor.

    `name` is the term's parameter suffix (see `names.group_names`).
    """
    if any(v in body.columns.categorical for t in group.terms for v in t.variables):
        return _design(body, group, name)
    index = body.factor(group.factor, False)
    coord = joined(group.factor)
    scales, products = [], []
    for term in group.terms:
        tensors, arrays = body.product(term.variables)
        base = "1" if body.glm else "y_sd"
        scales.append(f"{base} / {arrays}.std()" if arrays else base)
        products.append(tensors)
    unit = "the link scale" if body.glm else "the outcome's SD"
    if len(group.terms) == 1:
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
    labels = ", ".join(f'"{"Intercept" if t.is_intercept else t.label}"' for t in group.terms)
    n = str(len(group.terms))
    _correlated(body, group, name, labels, n, f"np.array([{', '.join(scales)}])")
    return [
        f"u_{name}[{index}, {k}]" + (f" * {tensors}" if tensors else "")
        for k, tensors in enumerate(products)
    ]


def _design(body: BuildBody, group: GroupTerm, name: str) -> list[str]:
    """A group term with a categorical column: its effects' columns as a design matrix."""
    index = body.factor(group.factor, False)
    coord = joined(group.factor)
    codes = codings(group.siblings, body.columns.categorical)
    base = "1" if body.glm else "y_sd"
    blocks, labels, scales, how = [], [], [], []
    for term in group.terms:
        cats = [v for v in term.variables if v in body.columns.categorical]
        if len(cats) > 1:
            raise MlmError(
                f"{group.source}: '{term.label}' interacts {len(cats)} categorical columns; "
                "a group term takes one (make their combination one column in data.py)"
            )
        _, arrays = body.product(term.variables)
        numeric = ":".join(v for v in term.variables if v not in cats)
        scale = f"{base} / {arrays}.std()" if arrays else base
        if not cats:
            blocks.append(arrays or "np.ones(len(data))")
            labels.append(f'"{numeric or "Intercept"}"')
            scales.append(scale)
            continue
        (column,) = cats
        levels = body.levels((column,))
        contrasts = codes[term][column]
        rows = f"np.eye(len({levels}_levels))[{levels}_idx]" + ("[:, 1:]" if contrasts else "")
        blocks.append(f"{arrays}[:, None] * {rows}" if arrays else rows)
        chosen = f"{levels}_levels[1:]" if contrasts else f"{levels}_levels"
        prefix = f"{numeric}:" if numeric else ""
        labels.append(f'*(f"{prefix}{column}[{{v}}]" for v in {chosen})')
        count = f"len({levels}_levels)" + (" - 1" if contrasts else "")
        scales.append(f"*[{scale}] * ({count})")
        how.append(
            f"{column} by treatment contrasts (the reference level gets none)"
            if contrasts
            else f"{column} by every level"
        )
    matrix = f"X_{name}"
    body.prep += [
        *comment(
            f"{group.label}: the columns whose effects vary by {group.factor_label}, as lme4's "
            f"model matrix has them: {'; '.join(how)}."
        ),
        f"{matrix} = "
        + (blocks[0] if len(blocks) == 1 else f"np.column_stack([{', '.join(blocks)}])"),
    ]
    effect = f"{name}_effect"
    body.data_lines.append(f'{matrix}_ = pm.Data("{matrix}", {matrix}, dims=("obs", "{effect}"))')
    sd = f"np.array([{', '.join(scales)}])"
    if len(scales) == 1:  # one factor's levels: [scale] * count
        sd = f"np.array({scales[0].removeprefix('*')})"
    if group.correlated:
        _correlated(body, group, name, ", ".join(labels), f"{matrix}.shape[1]", sd)
    else:
        body.coords.append(f'"{effect}": [{", ".join(labels)}],')
        unit = "the link scale" if body.glm else "the outcome's SD"
        body.priors += [
            "",
            *comment(
                f"{group.label}: each column of {matrix} has an effect per level of "
                f"{group.factor_label}, independent of the others, non-centered (u = z * "
                f"sigma). Half-normal SDs on the scale of {unit} (per SD of a numeric column)."
            ),
            *body.rv(f"sigma_{name}", "HalfNormal", f"sigma={sd}", dims=f'"{effect}"', kind="sd"),
            f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, dims=("{coord}", "{effect}"))',
            (
                f'u_{name} = pm.Deterministic("u_{name}", z_{name} * sigma_{name}, '
                f'dims=("{coord}", "{effect}"))'
            ),
        ]
    return [f"(u_{name}[{index}] * {matrix}_).sum(axis=1)"]


def _correlated(
    body: BuildBody, group: GroupTerm, name: str, labels: str, n: str, sd_scales: str
) -> None:
    """A correlated group term's priors: LKJ Cholesky covariance, u = z @ chol.T."""
    coord = joined(group.factor)
    unit = "the link scale" if body.glm else "the outcome's SD"
    categorical = body.columns.categorical

    def what(term) -> str:
        if term.is_intercept:
            return "an intercept"
        if any(v in categorical for v in term.variables):
            return f"the effects of {term.label}"
        return f"a slope on {term.label}"

    lhs = " and ".join(what(t) for t in group.terms)
    effect = f"{name}_effect"
    body.coords.append(f'"{effect}": [{labels}],')
    body.coords.append(f'"{effect}_corr": [{labels}],')
    sds = f"and half-normal SDs on the scale of {unit} per SD of each column"
    sd_dist = f"pm.HalfNormal.dist(sigma={sd_scales}, shape={n})"
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
            f"HalfNormal(sigma={sd_scales.removeprefix('np.array(').removesuffix(')')}))"
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
