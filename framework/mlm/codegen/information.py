"""How much each grouping's levels say about their own effects: the numbers behind the
centred / non-centred choice of a group term (groups.centred).

A level's effect u_j ~ Normal(0, sigma_g) is seen through its n_j rows, whose mean carries
noise of variance sigma^2 / n_j. The centred form u_j ~ Normal(0, sigma_g) samples well
when the data pin u_j down better than the population distribution does, that is when the
expected information per level, n_j * sigma_g^2 / sigma^2, is above 1 (Betancourt &
Girolami 2015, "Hamiltonian Monte Carlo for hierarchical models"); below 1 the posterior
of (u, sigma_g) is a funnel and the non-centred form u = z * sigma_g is the one that
samples. What matters is the whole posterior of sigma_g, not its centre: with few levels,
sigma_g is weakly identified and its posterior reaches down to values where the data say
little, and a centred term then funnels there (MASS's oats: 6 blocks, 41 divergences).

So the estimate here is a one-way analysis of variance of the grouping on the response,
as cheap as a few means: the mean squares between (MSB) and within (MSW) its levels of the
residuals of the population-level terms' least-squares fit. F = MSB / MSW estimates
1 + n0 * sigma_g^2 / sigma^2 (n0: the ANOVA's effective rows per level), with an F
distribution on (levels - 1, residual) degrees of freedom at the truth. `info` is the
point estimate of n * sigma_g^2 / sigma^2 at the median level's n rows; `info_low` the same
at the lower end of a 90 % interval for sigma_g^2 / sigma^2 (F divided by the F
distribution's 95th percentile): the value sigma_g's posterior still reaches.

A grouping that holds another (B in `(1 | B/V)`: each B:V plot lies in one block) is
analysed on the means of the finer grouping's levels, since the block's mean is then noisy
through the plots' effects as well as the rows.

For a binomial or Poisson family the same moments on the response's scale (the proportion,
the count) give n * sigma_g^2 / sigma^2 on the link scale to first order (the delta method:
both variances scale by the same derivative of the link). It is a guide, not a fit: the
rule it feeds was chosen by sampling the validation corpus (docs/validation.md).
"""

from __future__ import annotations

from dataclasses import dataclass

# The upper percentile of the F distribution that gives `info_low` (a 90 % interval's lower
# end for the variance ratio).
QUANTILE = 0.95


@dataclass(frozen=True)
class Information:
    """A grouping's one-way ANOVA (of the response adjusted for the population terms and
    the other groupings) and what it says about a level's information."""

    levels: int
    rows: float  # the median level's rows
    f: float  # MSB / MSW
    df: tuple[int, int]  # (between, within) degrees of freedom
    info: float  # n * sigma_g^2 / sigma^2 at the estimate (n: the median level's rows)
    info_low: float  # the same at the lower end of a 90 % interval for the variance ratio
    units: str = "rows"  # what the ANOVA compared: rows, or the means of a finer grouping
    size: float = 0.0  # the median level's n: rows, units, or a binomial's trials
    # What the response was adjusted for before the ANOVA: the population terms' and the
    # other groupings' labels (empty: a one-way ANOVA of the response itself).
    adjusted: tuple[str, ...] = ()


def response_scale(spec, columns, data):
    """The response on a scale where a group effect adds (approximately): a bernoulli's 0/1,
    a binomial's proportion, a lognormal's log; None when there is none to use."""
    import numpy as np
    import pandas as pd

    from mlm.codegen.columns import evaluate

    y = data[spec.response]
    if columns.outcome is not None:
        y = (y == columns.outcome[1]).astype(float)
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    if spec.family == "binomial" and spec.trials is not None:
        values = values / np.asarray(evaluate(spec.trials, data), dtype=float)
    if spec.family == "lognormal":
        values = np.log(values)
    return values if np.isfinite(values).all() else None


def population_design(spec, columns, data):
    """The population terms' columns (categorical ones by indicator columns), with an
    intercept: what the ANOVA's residuals are taken from."""
    import numpy as np
    import pandas as pd

    from mlm.codegen.columns import evaluate

    blocks = [np.ones((len(data), 1))]
    for term in spec.terms:
        if term.is_intercept:
            continue
        block = np.ones((len(data), 1))
        for v in term.variables:
            if v in columns.categorical:
                codes = pd.factorize(data[v].astype(str), sort=True)[0]
                block = (block[:, :, None] * np.eye(codes.max() + 1)[codes][:, None, 1:]).reshape(
                    len(data), -1
                )
            elif v in columns.derived:
                block = block * np.asarray(evaluate(columns.derived[v], data), float)[:, None]
            else:
                block = block * data[v].to_numpy(dtype=float)[:, None]
        blocks.append(block)
    return np.column_stack(blocks)


def anova(values, key, units=None, weights=None, spread=None, fitted=(0, 0)):
    """One-way ANOVA of `values` by the levels in `key`: (levels, MSB, MSW, df between,
    df within, n0, the median level's size). With `units` (a finer grouping's level per
    row), on the units' means; with `weights` (a binomial's trials), each row counts as
    that many, and `spread` (a binomial's p (1 - p)) is each row's own variance within.
    `fitted`: the degrees of freedom the fitted columns took between and within levels."""
    import numpy as np
    import pandas as pd

    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    frame = pd.DataFrame({"y": values * w, "w": w, "g": np.asarray(key)})
    if units is not None:
        frame["u"] = np.asarray(units)
        frame = frame.groupby(["g", "u"], sort=False)[["y", "w"]].sum().reset_index()
        frame["y"], frame["w"] = frame["y"] / frame["w"], 1.0
        frame["y"] *= frame["w"]
    sums = frame.groupby("g", sort=False)[["y", "w"]].sum()
    n = sums["w"].to_numpy(dtype=float)
    means = sums["y"].to_numpy() / n
    y = frame["y"].to_numpy() / frame["w"].to_numpy()
    total, levels = float(n.sum()), n.size
    grand = float(sums["y"].sum() / total)
    between = float((n * (means - grand) ** 2).sum())
    level_mean = frame["g"].map(dict(zip(sums.index, means, strict=True))).to_numpy()
    within = float((frame["w"].to_numpy() * (y - level_mean) ** 2).sum())
    if spread is not None and units is None:
        within += float((w * np.asarray(spread, dtype=float)).sum())
    df1 = max(levels - 1 - fitted[0], 1)
    df2 = max(round(total - levels) - fitted[1], 1)
    n0 = (total - (n**2).sum() / total) / max(df1, 1)
    return levels, between / max(df1, 1), within / max(df2, 1), df1, df2, n0, float(np.median(n))


def slope_information(values, key, x):
    """A varying slope's information per level, sigma_slope^2 * Sxx_j / sigma^2 at the
    median level's within-level spread Sxx_j of the predictor (a level whose rows share
    one value of it holds none), from each level's least-squares slope: their variance
    between levels less their mean sampling variance estimates sigma_slope^2.
    (info, info_low) or None."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    frame = pd.DataFrame({"y": values, "x": np.asarray(x, dtype=float), "g": np.asarray(key)})
    by = frame.groupby("g", sort=False)
    xc = frame["x"] - by["x"].transform("mean")
    yc = frame["y"] - by["y"].transform("mean")
    sxx = (xc**2).groupby(frame["g"], sort=False).sum()
    sxy = (xc * yc).groupby(frame["g"], sort=False).sum()
    n = by.size()
    usable = (sxx > 1e-9 * max(float(sxx.max()), 1e-300)) & (n > 2)
    if usable.sum() < 3:
        return None
    b = sxy[usable] / sxx[usable]
    fitted = by["y"].transform("mean") + xc * frame["g"].map(b).fillna(0)
    residual = float(((frame["y"] - fitted)[frame["g"].map(usable)] ** 2).sum())
    dof = float(n[usable].sum() - 2 * usable.sum())
    if dof < 1 or residual <= 0:
        return None
    sigma2 = residual / dof
    k = int(usable.sum())
    spread = float(b.var(ddof=1))
    noise = float((sigma2 / sxx[usable]).mean())
    low = spread * (k - 1) / float(stats.chi2.ppf(QUANTILE, k - 1))
    typical = float(np.median(sxx.where(usable, 0.0)))
    return (
        float(max((spread - noise) * typical / sigma2, 0.0)),
        float(max((low - noise) * typical / sigma2, 0.0)),
    )


# Above this many cells (rows x population columns) the population terms are not fitted
# (the ANOVA then runs on the response as it is): writing model.py stays cheap at any size.
MAX_CELLS = 50_000_000


def group_information(spec, columns, data) -> dict:
    """Each grouping (its factor tuple) -> the Information of its level means, and each
    numeric slope of a group term, (factor, its variables) -> (info, info_low); {} when
    none can be had. The residuals each grouping is analysed on are those of the
    population terms and of every other grouping (as fixed effects, by alternating
    projections: subtracting its level means in turn) except the ones nested in it, so
    that a crossed grouping's effects (Penicillin's samples, for its plates) are not taken
    for noise."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    from mlm.codegen.columns import _factor_values, nested, term_values

    y = response_scale(spec, columns, data)
    if y is None or not spec.groups:
        return {}
    weights = None
    if spec.family == "binomial" and spec.trials is not None:
        from mlm.codegen.columns import evaluate

        weights = np.asarray(evaluate(spec.trials, data), dtype=float)
    w = np.ones(len(y)) if weights is None else weights
    design = np.ones((len(y), 1))
    if len(y) * (1 + len(spec.terms)) <= MAX_CELLS:
        try:
            design = population_design(spec, columns, data)
        except (ValueError, KeyError):
            pass
    if design.size > MAX_CELLS:
        design = np.ones((len(y), 1))
    population = [t.label for t in spec.terms if not t.is_intercept] if design.shape[1] > 1 else []
    labels = {g.factor: g.factor_label for g in spec.groups}
    root = np.sqrt(w)
    try:
        rank = int(np.linalg.matrix_rank(design * root[:, None]))
    except np.linalg.LinAlgError:
        return {}
    codes = {g.factor: pd.factorize(_factor_values(data, g.factor))[0] for g in spec.groups}
    counts = {f: int(c.max()) + 1 for f, c in codes.items()}

    def project(r, groupings):
        """r less its weighted least-squares fit on the design and the groupings' levels."""
        for _ in range(1 if not groupings else 50):
            before = r
            beta, *_ = np.linalg.lstsq(design * root[:, None], r * root, rcond=None)
            r = r - design @ beta
            for f in groupings:
                sums = np.bincount(codes[f], weights=r * w, minlength=counts[f])
                r = r - (sums / np.bincount(codes[f], weights=w, minlength=counts[f]))[codes[f]]
            if np.abs(r - before).max() <= 1e-10 * (np.abs(y).max() + 1):
                break
        return r

    def constant(columns_, within) -> np.ndarray:
        """Which of `columns_`' columns are constant within the levels in `within`."""
        means = pd.DataFrame(columns_).groupby(within).transform("mean").to_numpy()
        scale = np.abs(columns_).max(axis=0) + 1
        return np.abs(columns_ - means).max(axis=0) <= 1e-9 * scale

    def rank_of(columns_) -> int:
        return int(np.linalg.matrix_rank(columns_)) if columns_.shape[1] else 0

    out: dict = {}
    for factor, key in codes.items():
        count = counts[factor]
        finer = [
            f
            for f, other in codes.items()
            if f != factor and count < counts[f] < len(key) and nested(other, key)
        ]
        # A grouping with a level per row (an observation-level effect, as lme4's
        # grouseticks example has for overdispersion) is part of the residual: taken out as
        # a fixed effect it would leave no residual at all to compare the levels with.
        others = [f for f in codes if f != factor and f not in finer and counts[f] < len(key)]
        residuals = project(y.astype(float), others)
        unit = min(finer, key=lambda f: counts[f]) if finer else None
        units = codes[unit] if unit else None
        # The fitted columns took some freedom: those constant within the levels (the
        # intercept, a predictor of the level, a grouping the levels lie in) from between
        # them, the others (constant within the units, when units) from within.
        fixed_between = rank_of(design[:, constant(design, key)])
        inside = design if units is None else design[:, constant(design, units)]
        fixed_within = rank_of(inside) - fixed_between
        for f in others:
            if nested(key, codes[f]):  # the levels lie in f's: f's freedom is between
                fixed_between += counts[f] - 1
            elif units is None or nested(units, codes[f]):
                fixed_within += counts[f] - 1
        spread = y * (1 - y) if weights is not None else None
        levels, msb, msw, df1, df2, n0, size = anova(
            residuals, key, units, weights, spread, (fixed_between - 1, fixed_within)
        )
        if not (msw > 0 and df1 > 0 and np.isfinite(msb)):
            continue
        f = msb / msw
        upper = float(stats.f.ppf(QUANTILE, df1, df2))
        # F estimates 1 + n0 * ratio; a median level of `size` rows (or units) holds
        # size * ratio.
        ratio, low = (f - 1) / n0, (f / upper - 1) / n0
        out[factor] = Information(
            levels=levels,
            rows=float(np.median(np.bincount(key))),
            f=f,
            df=(df1, df2),
            info=float(max(size * ratio, 0.0)),
            info_low=float(max(size * low, 0.0)),
            units="rows" if unit is None else "means of " + ":".join(unit),
            size=size,
            adjusted=(*population, *(labels[f] for f in others)),
        )
        for group in spec.groups:
            if group.factor != factor:
                continue
            for term in group.terms:
                if term.is_intercept or any(v in columns.categorical for v in term.variables):
                    continue
                slope = slope_information(
                    residuals, key, term_values(term.variables, columns, data)
                )
                if slope is not None:
                    out[(factor, term.variables)] = slope
    del rank
    return out
