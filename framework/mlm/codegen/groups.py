"""Group terms: effects that vary by a grouping's levels, independent with half-normal SDs
or correlated through an LKJ Cholesky covariance; centred (u ~ Normal(0, sigma)) when each
level's data are informative about its effect, non-centred (u = z * sigma) when they may
not be (`centred`, from the numbers of mlm/codegen/information.py),
partly centred (`form`) when a correlated term's intercepts are informed by their data and
its slopes are not; a centred group intercept on the parts of the model constant within
its levels (`centring`: the intercept, a nesting grouping's effects).

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

# A group term is written centred (u ~ Normal(0, sigma)) when the data say much about each
# level's effect even at the low end of what they say about sigma: the expected information
# per level, n * sigma_g^2 / sigma^2 (mlm/codegen/information.py), at the lower end of its
# 90 % interval, is at least CENTRED_INFO for the term's intercept and each of its slopes;
# non-centred (u = z * sigma) otherwise. Below 1 the population distribution says more
# about an effect than its level's data do, and the centred posterior is a funnel
# (Betancourt & Girolami 2015); the interval's lower end, not the estimate, because with
# few levels sigma's posterior reaches far below its estimate (MASS's oats: 6 blocks,
# estimated 4.3, lower end 0.6; centred gave 10-41 divergences). docs/validation.md has the
# measurements.
CENTRED_INFO = 1.0
# The rule before (kept for the measurements): centred when the median level holds at least
# this many rows.
CENTRED_ROWS = 6
# Switches that tests/validation/parameterisations.py flips to measure the alternatives:
# MODE "auto" applies the rule above; "rows" the rows-per-level rule; "info_point" the
# information's estimate instead of its lower end; "rows+levels" the rows rule and at least
# MIN_LEVELS levels; "centred", "noncentred" force one form. ON_INTERCEPT centres the
# centred group intercepts on the rest of the model (`centring`: the intercept, nesting
# groupings' effects, population terms constant within a level; False: on nothing, u ~
# Normal(0, sigma)). PARTIAL writes a correlated term whose intercept passes the rule and a
# slope does not partly centred (`form`); False writes it non-centred.
# A correlated term's model.py comment says that its covariance's prior sits at a slope
# predictor's 0 when that 0 is more than FAR of the predictor's SDs from its mean.
FAR = 2.0
MODE = "auto"
MIN_LEVELS = 7
ON_INTERCEPT = True
PARTIAL = True


def _fmt(x: float) -> str:
    return f"{x:.2g}" if x < 10 else f"{x:.0f}"


def centred(body: BuildBody, group: GroupTerm) -> tuple[bool, str]:
    """Whether `group`'s effects are written centred, and why, with the numbers."""
    how, why = form(body, group)
    return how == "centred", why


def form(body: BuildBody, group: GroupTerm) -> tuple[str, str]:
    """How `group`'s effects are written: "centred", "partial" or "noncentred", and why.

    "partial" is for a correlated intercept and slope on a centred numeric column (one far
    from 0, so that the intercepts at 0 are extrapolations) whose intercept passes the rule
    and slope does not (Orthodont: 27 children of 4 rows, each child's distance at age 11
    pinned down, its growth per year not): the intercepts, at the slope's centre, are
    centred and the slopes non-centred given them (`_partial`). A slope near 0 is left to
    the rule: its intercepts are already where the data are, and the form gained nothing
    there (epil's Visit; docs/validation.md).
    """
    columns = body.columns
    rows = columns.rows_per_level.get(group.factor, 0)
    levels = columns.group_levels.get(group.factor, 0)
    if MODE in ("centred", "noncentred"):
        return MODE, f"{MODE} (forced)"
    level = columns.information.get(group.factor)
    if MODE in ("rows", "rows+levels") or level is None:
        enough = rows >= CENTRED_ROWS and (MODE != "rows+levels" or levels >= MIN_LEVELS)
        if enough:
            return "centred", (
                f"centred: its levels hold many rows each ({rows:g}, the median; >= "
                f"{CENTRED_ROWS}), so the data pin each effect down and the centred form "
                "samples best"
            )
        return "noncentred", (
            f"non-centred: its levels hold few rows each ({rows:g}, the median; < "
            f"{CENTRED_ROWS}), so the effects lean on sigma and the non-centred form samples "
            "best, even when sigma is near 0"
        )
    # (what, estimate, lower end) for the intercept (a level's mean) and each slope.
    parts = []
    if group.terms[0].is_intercept or not any(not t.is_intercept for t in group.terms):
        parts.append(("intercept", level.info, level.info_low))
    for term in group.terms:
        slope = columns.information.get((group.factor, term.variables))
        if not term.is_intercept and slope is not None:
            parts.append((f"slope on {term.label}", *slope))
    if not parts:
        parts.append(("intercept", level.info, level.info_low))
    point = MODE == "info_point"
    is_centred = all((info if point else low) >= CENTRED_INFO for _, info, low in parts)
    units = f"{rows:g} rows"
    if level.units != "rows":
        # "means of BROOD": one such mean is "1 mean of BROOD"
        what = level.units.replace("means", "mean", 1) if level.size == 1 else level.units
        units += f", {level.size:g} {what}"
    elif level.size != rows:
        units += f", {level.size:g} trials"
    numbers = "; ".join(
        f"{what} {_fmt(info)}" + ("" if point else f", at least {_fmt(low)}")
        for what, info, low in parts
    )
    adjusted = level.adjusted
    of = (
        "the response"
        if not adjusted
        else "the response adjusted for "
        + (", ".join(adjusted[:-1]) + " and " + adjusted[-1] if len(adjusted) > 1 else adjusted[0])
    )
    source = (
        f"a one-way ANOVA by {group.factor_label} ({levels} levels, median {units}) of {of}, "
        f"F = {level.f:.3g} on {level.df[0]} and {level.df[1]} df"
    )
    if point:
        verdict = ("all" if is_centred else "not all") + f" >= {CENTRED_INFO:g}"
    elif is_centred and len(parts) == 1:
        verdict = f"the lower end of its 90 % interval is >= {CENTRED_INFO:g}"
    elif is_centred:
        verdict = f"the lower ends of their 90 % intervals are all >= {CENTRED_INFO:g}"
    else:
        verdict = f"a lower end of a 90 % interval is below {CENTRED_INFO:g}"
    # A GLM has no residual sigma: its ANOVA is of the counts or proportions, whose
    # variance within levels stands for sigma^2 (to first order, the delta method).
    ratio = "n sigma_g^2 / sigma^2" + (
        ", sigma^2 the variance within levels on the response's scale" if body.glm else ""
    )
    if is_centred:
        return "centred", (
            f"centred: each level's data say more about its effect than the population "
            f"distribution does (expected information per level, {ratio}: "
            f"{numbers}; {verdict}; from {source}), so the centred form samples best"
        )
    information = f"(expected information per level, {ratio}: {numbers}; {verdict}; from {source})"
    intercept_low = parts[0][1 if point else 2] if parts[0][0] == "intercept" else 0.0
    if (
        PARTIAL
        and len(parts) == 2
        and len(group.terms) == 2
        and intercept_low >= CENTRED_INFO
        and group.correlated
        and group.terms[1] in columns.centres
    ):
        return "partial", (
            f"partly centred: each level's data say more about its intercept than the "
            f"population distribution does, but may say less about its slope {information}, "
            "so the intercepts are centred (at the slope's centre, where the data pin them "
            "down) and the slopes non-centred given them"
        )
    return "noncentred", (
        f"non-centred: a level's data may say less about its effect than the population "
        f"distribution does {information}, so sigma_g's posterior reaches where the "
        "centred form funnels; the non-centred form samples well there"
    )


def group_term(body: BuildBody, group: GroupTerm, name: str) -> list[str]:
    """Write a group term's priors into `body`; return its parts of the linear predictor.

    `name` is the term's parameter suffix (see `names.group_names`).
    """
    if any(v in body.columns.categorical for t in group.terms for v in t.variables):
        return _design(body, group, name)
    index = body.factor(group.factor, False)
    coord = body.level_coord(joined(group.factor))
    scales, products = [], []
    for term in group.terms:
        tensors, arrays = body.product(term.variables)
        base = "1" if body.glm else body.y_sd
        scales.append(f"{base} / {body.sd(arrays)}" if arrays else base)
        products.append(tensors)
    unit = "the link scale" if body.glm else body.outcome_sd
    if len(group.terms) == 1:
        (term,), (scale,), (tensors,) = group.terms, scales, products
        what = "an intercept" if term.is_intercept else f"a slope on {term.label}"
        has = "scale 1 on the link scale" if body.glm else f"the scale of {unit}"
        default_sd = f"The SD's half-normal prior has {has}" + (
            "." if term.is_intercept else f" per SD of {term.label}."
        )
        is_centred, why = centred(body, group)
        u = f'u_{name} = pm.Normal("u_{name}", mu=0, sigma=sigma_{name}, dims="{coord}")'
        z = [
            f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, dims="{coord}")',
            f'u_{name} = pm.Deterministic("u_{name}", z_{name} * sigma_{name}, dims="{coord}")',
        ]
        if not is_centred:
            effects = z
            flip = (
                f"Where each level's data are informative, centre it: {u}, in place of the "
                "two lines below."
            )
        elif group in body.means:
            on, what_on, mean_lines = _mean(body, group, name)
            why = why.replace(
                "centred:", f"centred on {what_on} (a_{name} ~ Normal({on}, sigma_{name})):", 1
            )
            why += f"; on {what_on}, it does not trade off against the mean of u_{name}"
            effects = [
                *mean_lines,
                f'a_{name} = pm.Normal("a_{name}", mu={on}, sigma=sigma_{name}, dims="{coord}")',
                f'u_{name} = pm.Deterministic("u_{name}", a_{name} - {on}, dims="{coord}")',
            ]
            flip = (
                f"Where they are not, non-centre it: {' and '.join(z)}, in place of the "
                "two lines below."
            )
        else:
            effects = [u]
            flip = (
                f"Where they are not, non-centre it: {' and '.join(z)}, in place of the line below."
            )
        body.priors += [
            "",
            *comment(
                f"{group.label}: {what} per level of {group.factor_label}, {why}."
                + ("" if f"sigma_{name}" in body.given else f" {default_sd}")
            ),
            *comment(flip),
            *body.rv(f"sigma_{name}", "HalfNormal", f"sigma={scale}", kind="sd"),
            *effects,
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
    coord = body.level_coord(joined(group.factor))
    codes = codings(group.siblings, body.columns.categorical)
    base = "1" if body.glm else body.y_sd
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
        scale = f"{base} / {body.sd(arrays)}" if arrays else base
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
        body.priors += [
            "",
            *comment(
                f"{group.label}: each column of {matrix} has an effect per level of "
                f"{group.factor_label}, independent of the others, {centred(body, group)[1]}. "
                f"Half-normal SDs {_sd_words(body)} (per SD of a numeric column)."
            ),
            *body.rv(f"sigma_{name}", "HalfNormal", f"sigma={sd}", dims=f'"{effect}"', kind="sd"),
            *(
                [
                    f'u_{name} = pm.Normal("u_{name}", mu=0, sigma=sigma_{name}, '
                    f'dims=("{coord}", "{effect}"))'
                ]
                if centred(body, group)[0]
                else [
                    (
                        f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, '
                        f'dims=("{coord}", "{effect}"))'
                    ),
                    (
                        f'u_{name} = pm.Deterministic("u_{name}", z_{name} * sigma_{name}, '
                        f'dims=("{coord}", "{effect}"))'
                    ),
                ]
            ),
        ]
    return [f"(u_{name}[{index}] * {matrix}_).sum(axis=1)"]


def _correlated(
    body: BuildBody, group: GroupTerm, name: str, labels: str, n: str, sd_scales: str
) -> None:
    """A correlated group term's priors: LKJ Cholesky covariance; centred, partly centred
    or non-centred (`form`)."""
    coord = body.level_coord(joined(group.factor))
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
    sds = f"and half-normal SDs {_sd_words(body)} per SD of each column"
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
    how, why = form(body, group)
    dims = f'dims=("{coord}", "{effect}")'
    mv = f'pm.MvNormal("u_{name}", mu=0, chol=chol_{name}, {dims})'
    z = f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, {dims})'
    non_centred = f"{z} and u_{name} = z_{name} @ chol_{name}.T"
    if how == "partial":
        form_words, effects, flip = _partial(body, group, name)
    elif how != "centred":
        form_words = "u = z @ chol.T"
        effects = [z, f'u_{name} = pm.Deterministic("u_{name}", z_{name} @ chol_{name}.T, {dims})']
        flip = (
            f"Where each level's data are informative, centre it: u_{name} = {mv}, in place "
            f"of z_{name}."
        )
    elif group in body.means:
        on, what_on, mean_lines = _mean(body, group, name)
        why = why.replace("centred:", f"centred, the intercepts on {what_on}:", 1)
        if on == _intercept_var(body):
            form_words = "a ~ MvNormal((intercept, 0, ...), chol), u = a - (intercept, 0, ...)"
            mean = f"pt.concatenate([pt.stack([{on}]), pt.zeros({int(n) - 1})])"
        else:
            form_words = f"a ~ MvNormal(({on}, 0, ...), chol), u = a - ({on}, 0, ...)"
            zeros = f"pt.zeros(({on}.shape[0], {int(n) - 1}))"
            mean = f"pt.concatenate([{on}[:, None], {zeros}], axis=1)"
        effects = [
            *mean_lines,
            f"mean_{name} = {mean}",
            f'a_{name} = pm.MvNormal("a_{name}", mu=mean_{name}, chol=chol_{name}, {dims})',
            f'u_{name} = pm.Deterministic("u_{name}", a_{name} - mean_{name}, {dims})',
        ]
        flip = (
            f"Where they are not, non-centre it: {non_centred}, in place of mean_{name} and "
            f"a_{name}."
        )
    else:
        form_words = "u ~ MvNormal(0, chol)"
        effects = [f"u_{name} = {mv}"]
        flip = f"Where they are not, non-centre it: {non_centred}, in place of the MvNormal."
    body.priors += [
        "",
        *comment(
            f"{group.label}: {lhs} per level of {group.factor_label}, correlated, {why}: "
            f"{form_words}. The covariance is an LKJ(2) correlation (mildly favouring small "
            f"correlations) {sds}.{_far_from_zero(body, group)}"
        ),
        *comment(flip),
        (
            f'chol_{name}, corr_{name}, sd_{name} = pm.LKJCholeskyCov("chol_{name}", n={n}, '
            f"eta=2.0, sd_dist={sd_dist}, compute_corr=True, store_in_trace=False)"
        ),
        *effects,
        f'pm.Deterministic("sigma_{name}", sd_{name}, dims="{effect}")',
        f'pm.Deterministic("corr_{name}", corr_{name}, dims=("{effect}", "{effect}_corr"))',
    ]


def _far_from_zero(body: BuildBody, group: GroupTerm) -> str:
    """A note for a correlated term whose slope's predictor has its 0 far from the data
    (more than FAR SDs from its mean): the covariance's prior sits at that 0."""
    if not group.terms[0].is_intercept:
        return ""
    for term in group.terms[1:]:
        if term not in body.columns.centres or len(term.variables) != 1:
            continue
        centre = body.columns.centres[term]
        _, arrays = body.product(term.variables)
        sd = body.value(f"{arrays}.std()")
        if sd > 0 and abs(centre) > FAR * sd:
            return (
                f" That prior is at {term.label} = 0, where lme4 reports the intercepts' SD "
                f"and correlation, {abs(centre) / sd:.2g} SDs of {term.label} from the data's "
                "mean; "
                "there the LKJ prior's lean towards small correlations can pull the slope's "
                "SD down (nlme's Orthodont, age 8-14: 0.13-0.17 against REML's 0.23, and 0.20 "
                f"with age centred). To put the prior at the data, centre {term.label} in "
                "data.py and write this file anew (mlm generate model --formula ... --force)."
            )
    return ""


def _partial(body: BuildBody, group: GroupTerm, name: str) -> tuple[str, list[str], str]:
    """An intercept and a slope partly centred (`form`): (its form in words, its lines, how
    to non-centre it).

    The covariance's prior stays where lme4 reports it (the intercepts at 0). The effects
    are sampled at the slope's centre c: there the intercepts are a - mean ~ Normal(0, s),
    centred, and the slopes r (a - mean) / s + o z, non-centred, where (s, 0; r, o) is the
    Cholesky factor of the covariance at c, S Sigma S' with S = (1, c; 0, 1). From Sigma's
    factor L: S L's first row is L[0] + c L[1], so s is its length, r = L[1] . (L[0] + c
    L[1]) / s and o = L[0, 0] L[1, 1] / s (det S = 1). In closed form, not through a
    Cholesky decomposition, whose gradient is unstable where the slope SD nears 0. The
    effects so drawn are MvNormal(0, Sigma): the same model as the other forms, whose
    effects' log density differs only by the change of variables.
    """
    coord = body.level_coord(joined(group.factor))
    effect = f"{name}_effect"
    slope = group.terms[1]
    centre = body.centre(slope)
    if group in body.means:
        on, what_on, mean_lines = _mean(body, group, name)
        deviation, centred_on = f"(a_{name} - {on})", f" on {what_on}"
    else:
        on, mean_lines, deviation, centred_on = "0", [], f"a_{name}", ""
    chol = f"chol_{name}"
    sd, along, own = f"sd_a_{name}", f"along_{name}", f"own_{name}"
    value = body.columns.centres[slope]
    lines = [
        *comment(
            f"The effects at {slope.label} = {value!r}, where the data pin each level's "
            f"intercept down: at_{name} is the intercepts' row of the covariance's Cholesky "
            f"factor there; {sd} is their SD, {along} the slope's part that goes with them, "
            f"{own} the slope's own (that factor, in closed form)."
        ),
        f"at_{name} = {chol}[0] + {centre} * {chol}[1]",
        f"{sd} = pt.sqrt((at_{name} ** 2).sum())",
        f"{along} = ({chol}[1] * at_{name}).sum() / {sd}",
        f"{own} = {chol}[0, 0] * {chol}[1, 1] / {sd}",
    ]
    intercepts = f"{deviation.strip('()')} - {centre} * slope_{name}"
    lines += [
        *mean_lines,
        *comment(f"The intercepts (at the centre), centred{centred_on}."),
        f'a_{name} = pm.Normal("a_{name}", mu={on}, sigma={sd}, dims="{coord}")',
        *comment(
            "The slopes, non-centred: the part that goes with the intercept and their own (z)."
        ),
        f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, dims="{coord}")',
        f"slope_{name} = {along} * {deviation} / {sd} + {own} * z_{name}",
        (
            f'u_{name} = pm.Deterministic("u_{name}", pt.stack([{intercepts}, slope_{name}], '
            f'axis=1), dims=("{coord}", "{effect}"))'
        ),
    ]
    a = "a" if on == "0" else "(a - mean)"
    form_words = (
        f"a ~ Normal({'0' if on == '0' else 'mean'}, s), slope = r {a} / s + o z, with (s, 0; "
        "r, o) the Cholesky factor of the covariance at the centre"
    )
    dims = f'dims=("{coord}", "{effect}")'
    flip = (
        f'To non-centre it all: z_{name} = pm.Normal("z_{name}", mu=0, sigma=1, {dims}) and '
        f"u_{name} = z_{name} @ chol_{name}.T, in place of the lines from at_{name} to "
        f"u_{name}."
    )
    return form_words, lines, flip


def _mean(body: BuildBody, group: GroupTerm, name: str) -> tuple[str, str, list[str]]:
    """What a centred group's effects are centred on (`centring`): (its Python expression,
    its words, the lines that compute it). The intercept alone is a scalar; with other
    parts, the mean is per level (`level_mean_NAME`), read at a row of each level."""
    from mlm.formula import INTERCEPT

    parts = body.means[group]
    if parts == [INTERCEPT]:
        return _intercept_var(body), "the intercept", []
    words, code = [], []
    for part in parts:
        if part == INTERCEPT:
            words.append("the intercept")
            code.append(_intercept_var(body))
        elif isinstance(part, GroupTerm):
            words.append(f"the effect of its {part.factor_label}")
            code.append(body.at_levels(body.rows[part], group.factor))
        else:
            words.append(f"{part.label}'s effect")
            code.append(body.at_levels(body.rows[part], group.factor))
    what = ", ".join(words[:-1]) + (" and " if len(words) > 1 else "") + words[-1]
    lines = [
        *comment(
            f"What the rest of the model predicts at each level of {group.factor_label} "
            f"({what}, constant within a level), read at a row of each level: "
            f"{group.factor_label}'s effects are centred on it."
        ),
        f"level_mean_{name} = " + " + ".join(code),
    ]
    return f"level_mean_{name}", f"the rest of the model at each level ({what})", lines


def _sd_words(body: BuildBody) -> str:
    """The scale of the group SDs' half-normal priors, in words."""
    return "of scale 1 on the link scale" if body.glm else f"on the scale of {body.outcome_sd}"


def _intercept_var(body: BuildBody) -> str:
    """The Python name of the intercept the model samples."""
    return "intercept_c" if body.columns.centres else "intercept"


def _candidates(body: BuildBody) -> list[GroupTerm]:
    """The group terms that can be centred on a mean: centred group intercepts (alone, or
    first in a correlated term, centred or partly centred) without a categorical column."""
    return [
        g
        for g in body.spec.groups
        if g.terms[0].is_intercept
        and (len(g.terms) == 1 or g.correlated)
        and not any(v in body.columns.categorical for t in g.terms for v in t.variables)
        and form(body, g)[0] != "noncentred"
    ]


def centring(body: BuildBody) -> dict[GroupTerm, list]:
    """Which parts of the linear predictor each centred group intercept is centred on
    (hierarchical centring: a_g ~ Normal(mean_g, sigma_g), u_g = a_g - mean_g), in order:
    `INTERCEPT`, population terms (`Term`) and the group terms it nests in (`GroupTerm`).

    A part can be a group's mean only where it is constant within each of the group's
    levels: the intercept everywhere, a population term where `columns.constant_within`
    says so, the effect of a grouping the group nests in (batch's, for batch:cask). Of the
    groups it could go to, a part goes to the one with the fewest levels (its effects'
    mean is the least pinned down by the data, so it trades off most with the part) and
    to the groups nested in that one, so that a nested chain of centred groups is centred
    all the way down (a_cask ~ Normal(a_batch[batch of cask], sigma_cask)) and the
    likelihood sees only the innermost. Crossed groups never share a part: the part would
    then enter the likelihood, and trade off against both.
    """
    from mlm.formula import INTERCEPT

    if not ON_INTERCEPT:
        return {}
    columns = body.columns
    candidates = _candidates(body)
    levels = columns.group_levels

    def nested(g: GroupTerm, h: GroupTerm) -> bool:
        return h.factor in columns.nests_in.get(g.factor, ())

    parts: list = []
    if INTERCEPT in body.spec.terms:
        parts.append((INTERCEPT, candidates))
    for term in body.spec.terms:
        if not term.is_intercept:
            within = [g for g in candidates if term in columns.constant_within.get(g.factor, ())]
            parts.append((term, within))
    for parent in body.spec.groups:
        if parent.terms[0].is_intercept and not any(
            v in columns.categorical for t in parent.terms for v in t.variables
        ):
            parts.append((parent, [g for g in candidates if nested(g, parent)]))
    means: dict[GroupTerm, list] = {}
    for part, groups in parts:
        if not groups:
            continue
        top = min(groups, key=lambda g: levels.get(g.factor, 0))
        for g in groups:
            if g == top or nested(g, top):
                means.setdefault(g, []).append(part)
    return means


def written_order(body: BuildBody) -> list[GroupTerm]:
    """The group terms in the formula's order, but each after the groups it is centred on
    (their effects must be defined first)."""
    means = body.means
    order: list[GroupTerm] = []
    waiting = list(body.spec.groups)
    while waiting:
        for g in waiting:
            parents = [p for p in means.get(g, ()) if isinstance(p, GroupTerm)]
            if all(p in order for p in parents):
                order.append(g)
                waiting.remove(g)
                break
        else:  # nesting is a strict order (fewer levels), so this cannot happen
            raise MlmError("the group terms' centring is circular")
    return order
