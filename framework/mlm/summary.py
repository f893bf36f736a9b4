"""The posterior summary `mlm summary` prints: which parameters, in what order (lme4's).

lme4's summary shows the population-level effects, then the group-level SDs and
correlations, then the residual SD; it shows neither the group effects (`ranef()` does)
nor the sampler's auxiliaries. mlm reads the same out of the generated models' names:

- population: `Intercept`, then each `b_*` in the model's order;
- group-level: `sigma_<group>` and `corr_<group>`, group by group;
- residual and family: `sigma`, `nu`, `theta`, `shape`, `phi`, `zi`, `log_sigma_*`;
- hidden unless asked: the group effects `u_*` (and `a_*`, the same effects plus the
  intercept), and the auxiliaries: the non-centred normals `z_*`, `chol_*`,
  `Intercept_centred`, `level_mean_*`, names starting or ending with `_`.

Any other name (a hand-written model's `slope`, `school_effect`) is shown, after the
population-level effects, in the model's order. This module is the one place that decides.
"""

from __future__ import annotations

import math
import warnings

from mlm.words import plural

POPULATION = "population"
OTHER = "other"
GROUP = "group"  # a group's SDs and correlations
RESIDUAL = "residual"
GROUP_EFFECT = "group_effect"  # hidden unless asked
AUXILIARY = "auxiliary"  # hidden unless asked
HIDDEN_ROLES = (GROUP_EFFECT, AUXILIARY)
_ORDER = (POPULATION, OTHER, GROUP, RESIDUAL, GROUP_EFFECT, AUXILIARY)
FAMILY = ("sigma", "nu", "theta", "shape", "phi", "zi", "alpha", "kappa")


def role(name: str, names: list[str] | tuple[str, ...]) -> str:
    """What a trace variable is to a reader of the summary (one of the roles above)."""
    if name in ("Intercept", "intercept") or name.startswith("b_"):
        return POPULATION
    if (
        name.startswith(("z_", "chol_", "level_mean_", "_"))
        or name.endswith("_")
        or name == "Intercept_centred"
    ):
        return AUXILIARY
    if name.startswith("u_") or (
        name.startswith("a_") and ("u_" + name[2:] in names or "sigma_" + name[2:] in names)
    ):
        return GROUP_EFFECT
    if name in FAMILY or name.startswith("log_sigma_"):
        return RESIDUAL
    if name.startswith(("sigma_", "corr_")):
        return GROUP
    return OTHER


def ordered(names: list[str]) -> list[str]:
    """The trace's variables in the summary's order: roles as listed, the intercept first,
    a group's SDs beside its correlations, otherwise the model's order."""
    roles = {n: role(n, names) for n in names}
    groups = list(dict.fromkeys(n.split("_", 1)[1] for n in names if roles[n] == GROUP))
    # The trace holds the sampled variables first and the Deterministics after them; an
    # effect sampled on the unit scale (b = z_b * scale, a Deterministic) takes z_b's place.
    place = {n: i for i, n in enumerate(names)}

    def key(item: tuple[int, str]) -> tuple:
        _, name = item
        position = place.get(f"z_{name}", place[name])
        kind = roles[name]
        if kind == POPULATION:
            return (0, name not in ("Intercept", "intercept"), position)
        if kind == GROUP:
            return (_ORDER.index(kind), groups.index(name.split("_", 1)[1]), position)
        return (_ORDER.index(kind), 0, position)

    return [name for _, name in sorted(enumerate(names), key=key)]


def interval_label(prob: float) -> str:
    """The interval columns' stem for a probability: 0.95 -> eti95, 0.995 -> eti99.5."""
    return f"eti{round(prob * 100, 6):g}"


def summary_of(idata, var_names=None, show_all: bool = False, prob: float = 0.95):
    """The summary table of a trace: one row per cell, lme4's order, a `role` column.

    `var_names` picks variables (shown whatever their role, in the order given). Without
    it, group effects and auxiliaries are left out unless `show_all`, and so are a
    correlation matrix's constant diagonal and mirror cells; the table's
    `attrs["hidden"]` maps each variable left out to its number of cells, and
    `attrs["hidden_cells"]` each variable to its cells left out that way. A constant cell
    (a correlation's diagonal) is reported as its value with sd 0, and no ESS or r_hat.
    """
    from mlm.check import summary_table

    names = list(idata["posterior"].data_vars)
    if var_names:
        chosen = list(dict.fromkeys(var_names))
    else:
        chosen = ordered(names)
    hidden, cells = {}, {}
    if not var_names and not show_all:
        hidden = {n: _size(idata, n) for n in chosen if role(n, names) in HIDDEN_ROLES}
        chosen = [n for n in chosen if n not in hidden]
    with warnings.catch_warnings():
        # A constant cell (a correlation's diagonal) has no R-hat or ESS: NumPy warns
        # while ArviZ computes them; they are set to NaN below.
        warnings.simplefilter("ignore", RuntimeWarning)
        table = summary_table(idata, chosen, ci_prob=prob)
    label = interval_label(prob)
    table = table.rename(
        columns={c: f"{label}_{c.rsplit('_', 1)[1]}" for c in table.columns if _bound(c)}
    )
    variable = table.index.str.replace(r"\[.*", "", regex=True)
    constant = table["sd"].astype(float) <= 1e-9 * table["mean"].astype(float).abs().clip(lower=1)
    if constant.any():
        table = table.astype({c: float for c in table.columns})
        value = table.loc[constant, "mean"].round(9)
        table.loc[constant, "mean"] = value
        for column in (f"{label}_lb", f"{label}_ub"):
            table.loc[constant, column] = value
        table.loc[constant, "sd"] = 0.0
        for column in ("ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd"):
            if column in table.columns:
                table.loc[constant, column] = math.nan
    if not var_names and not show_all:
        # A symmetric matrix's mirror cells (corr[b, a] repeats corr[a, b]).
        mirror = table.assign(variable=variable).duplicated(keep="first")
        dropped = constant | mirror
        for name in variable[dropped.to_numpy()]:
            cells[name] = cells.get(name, 0) + 1
        table = table[~dropped.to_numpy()]
        variable = variable[~dropped.to_numpy()]
    table.insert(0, "role", [role(n, names) for n in variable])
    table.attrs["hidden"] = hidden
    table.attrs["hidden_cells"] = cells
    table.attrs["interval"] = label
    return table


def _bound(column: str) -> bool:
    return column.startswith(("eti", "hdi")) and column.endswith(("_lb", "_ub"))


def _size(idata, name: str) -> int:
    posterior = idata["posterior"][name]
    return math.prod(s for d, s in posterior.sizes.items() if d not in ("chain", "draw"))


def hidden_note(table) -> str | None:
    """The line under a summary table saying what was left out and how to see it."""
    whole, part = table.attrs.get("hidden", {}), table.attrs.get("hidden_cells", {})
    if not whole and not part:
        return None
    parts = []
    if whole:
        parts.append(f"{', '.join(whole)} ({plural(sum(whole.values()), 'row')})")
    if part:
        parts.append(
            f"{plural(sum(part.values()), 'constant or mirrored cell')} of {', '.join(part)}"
        )
    example = next((n for n in whole if n.startswith("u_")), next(iter(whole or part)))
    return (
        f"not shown: {' and '.join(parts)}; --var {example} shows one variable, --all all of them"
    )
