"""build()'s body as it is written: its lines, the pm.Data and coords it declares, and
the parameters with their priors (mlm's default, or the one `--prior` gave).

The term modules (population, groups, residual) add their lines to one `BuildBody`;
the writer puts its pieces together into model.py.
"""

from __future__ import annotations

import re
import textwrap

from mlm.codegen.columns import Columns, codes_note
from mlm.codegen.names import RESERVED, joined, python_name
from mlm.codegen.priors import prior_arguments
from mlm.formula import INTERCEPT, ModelSpec, Term

# A population effect whose prior SD is below this is sampled on the unit scale
# (`BuildBody.normal`): samplers start each parameter at a point jittered by up to +-1 on
# the scale they sample it on (nutpie, PyMC and Stan alike), which for a slope per metre
# with a prior SD of 0.07 is 14 prior SDs out; under a log link exp() of that overflows and
# the chain never moves (lme4's grouseticks: 3 of 4 chains stuck).
UNIT_SCALE = 1.0


def comment(text: str, width: int = 88) -> list[str]:
    """`text` as comment lines that fit beside the generated code's indentation."""
    return ["# " + line for line in textwrap.wrap(text, width - 2)]


def call(distribution: str, *arguments: str) -> str:
    """`pm.DISTRIBUTION(arguments)`, leaving out empty ones."""
    return f"pm.{distribution}({', '.join(a for a in arguments if a)})"


class BuildBody:
    """Lines of build()'s body, before and inside the `with pm.Model` block."""

    def __init__(self, spec: ModelSpec, columns: Columns, data=None):
        self.spec = spec
        self.columns = columns
        self.data = data  # the data model.py is written for (`value`)
        self._namespace: tuple[int, dict] | None = None
        self.prep: list[str] = []
        self.coords: list[str] = ['"obs": data.index.to_numpy(),']
        self.data_lines: list[str] = []
        self.priors: list[str] = []
        # Centred group term -> the parts of the linear predictor it is centred on
        # (groups.centring), and each term's part of the linear predictor, by row.
        self.means: dict = {}
        self.rows: dict = {}
        self.centre_lines: list[str] = []  # `age_centre = 11.0`: constants of the centring
        self._data_vars: dict[tuple, str] = {}  # column or factor key -> tensor name
        self._coords: set[str] = set()
        self.glm = spec.family not in ("gaussian", "student_t", "lognormal")
        # lognormal's priors are scaled from log(y) as gaussian's are from y (y_sd is then
        # the SD of log(y)); the words of their comments say which.
        log = spec.family == "lognormal"
        # Statistics of the data the priors are scaled from, written as numbers (`stat`).
        self.stats: dict[str, str] = {}  # name -> the expression build() would compute it by
        self.outcome = "log(y)" if log else "the outcome"
        self.outcome_mean = "the mean of log(y)" if log else "the outcome's mean"
        self.outcome_sd = "the SD of log(y)" if log else "the outcome's SD"
        self.outcome_sds = "SDs of log(y)" if log else "outcome SDs"
        self.given = {p.name: p for p in spec.priors}  # --prior, by parameter name
        self.names: list[str] = []  # every parameter a --prior may name, in order
        # How each categorical column of each population term is coded, as lme4 codes it.
        self.coding = codings(spec.terms, columns.categorical)

    # parameters ---------------------------------------------------------------------
    def rv(self, name, dist, args, why="", dims="", kind="real", var=None, label=None) -> list[str]:
        """`var = pm.DIST("label", ARGS)` under its comment `why`, or the prior --prior gave.

        `name` is what --prior calls the parameter; `label` its name in the trace (`name`
        unless given: the centred intercept is `Intercept` to --prior, as in brms).
        """
        self.names.append(name)
        label = label or name
        if name in self.given:
            return self.given_prior(name, var or name, dims, kind, f"{dist}({args})", label)
        dims = f"dims={dims}" if dims else ""
        return [*comment(why), f"{var or name} = {call(dist, f'"{label}"', args, dims)}"]

    def normal(self, name: str, mu: str, scale: str, why: str, dims: str = "") -> list[str]:
        """A population effect's Normal(mu, scale) prior; sampled on the unit scale, as
        `z_NAME ~ Normal(0, 1)` and `NAME = mu + z_NAME * scale`, when its prior SD is below
        UNIT_SCALE on the data it is written for (the same prior, another starting point)."""
        sd = self.value(scale) if name not in self.given else float("nan")
        if not sd < UNIT_SCALE:
            return self.rv(name, "Normal", f"mu={mu}, sigma={scale}", why, dims=dims)
        self.names.append(name)
        on = f", dims={dims}" if dims else ""
        shift = "" if mu == "0" else f"{mu} + "
        why += (
            f" Sampled on the unit scale, as z_{name}: its prior SD ({sd:.2g}) is small beside "
            f"the +-1 by which samplers jitter their starting point, which would start it up to "
            f"{1 / sd:.0f} prior SDs out, where a chain can stick."
        )
        return [
            *comment(why),
            f'z_{name} = pm.Normal("z_{name}", mu=0, sigma=1{on})',
            f'{name} = pm.Deterministic("{name}", {shift}z_{name} * {scale}{on})',
        ]

    def value(self, expression: str) -> float:
        """What `expression`, over build()'s arrays and the statistics in `stats`, comes to
        on the data model.py is written for (NaN without data)."""
        import numpy as np
        import pandas as pd

        if self.data is None:
            return float("nan")
        if self._namespace is None or self._namespace[0] != len(self.prep):
            namespace = {"np": np, "pd": pd, "data": self.data}
            with np.errstate(all="ignore"):
                exec("\n".join(self.prep), namespace)
            self._namespace = (len(self.prep), namespace)
        namespace = self._namespace[1]
        with np.errstate(all="ignore"):
            for name, statistic in self.stats.items():
                if name not in namespace:
                    namespace[name] = eval(statistic, namespace)
            return float(eval(expression, namespace))

    def given_prior(
        self, name: str, var: str, dims: str, kind: str, default: str, label: str | None = None
    ) -> list[str]:
        """The lines of the prior --prior gave `name`, said so in their comment."""
        prior = self.given[name]
        label = label or name
        arguments = prior_arguments(prior, kind)
        dims = f"dims={dims}" if dims else ""
        square = var.replace("sigma", "sigma2", 1)
        on = f", on the variance {square} ({name} is its square root)" if prior.variance else ""
        note = comment(f"{name}: set by --prior '{prior.source}'{on}.")
        note += comment(f"(mlm's default: {default}.)")  # a line of its own: not broken mid-code
        if not prior.variance:
            return [*note, f"{var} = {call(prior.distribution, f'"{label}"', arguments, dims)}"]
        return [
            *note,
            f"{square} = {call(prior.distribution, f'"{square}"', arguments, dims)}",
            f"{var} = {call('Deterministic', f'"{name}"', f'pm.math.sqrt({square})', dims)}",
        ]

    # statistics of the data ---------------------------------------------------------
    def stat(self, name: str, expression: str) -> str:
        """The name of a number computed from the data by `expression` over build()'s arrays
        (`y_sd` for "y.std()"), which the writer writes as a literal (writer._statistics)."""
        for known, written in self.stats.items():
            if written == expression:
                return known
        taken = {python_name(c) for c in self.columns.numeric} | set(self.columns.derived)
        taken |= {f"{t}_" for t in taken}  # and their pm.Data tensors (`x_sd_` of column x_sd)
        while name in taken or name in self.stats:
            name += "_"
        self.stats[name] = expression
        return name

    @property
    def y_mean(self) -> str:
        """The outcome's mean (of log(y) for lognormal), where intercepts' priors centre."""
        log = self.spec.family == "lognormal"
        return self.stat("y_mean", "np.log(y).mean()" if log else "y.mean()")

    @property
    def y_sd(self) -> str:
        """The outcome's SD (of log(y) for lognormal), the scale of gaussian-like priors."""
        log = self.spec.family == "lognormal"
        return self.stat("y_sd", "np.log(y).std()" if log else "y.std()")

    def sd(self, arrays: str) -> str:
        """The name of the SD of a predictor's array (`x_sd`), or of a product `(x * z)`."""
        words = arrays.strip("()").split(" * ")
        return self.stat("_by_".join(words) + "_sd", f"{arrays}.std()")

    # data ---------------------------------------------------------------------------
    def centre(self, term: Term) -> str:
        """The name of the constant a numeric population term is centred at (`age_centre`)."""
        key = ("centre", term)
        if key not in self._data_vars:
            name = f"{joined(term.variables)}_centre"
            self.centre_lines.append(f"{name} = {self.columns.centres[term]!r}")
            self._data_vars[key] = name
        return self._data_vars[key]

    def level_coord(self, name: str) -> str:
        """The coords of a factor's levels: its name, unless pm.Data holds its values by
        that name (a numeric column) or a parameter has it (a grouping named `sigma`), as
        a dimension may not share a variable's name."""
        return f"{name}_level" if name in self.columns.numeric or name in RESERVED else name

    def array(self, column: str) -> str:
        """The numpy array of a numeric or computed column, computed once in build()."""
        key = ("array", column)
        if key not in self._data_vars:
            name = python_name(column)
            derived = self.columns.derived.get(column)
            if derived is None:
                if column in self.columns.codes:
                    note = codes_note(column, self.columns.codes[column])
                    self.prep += comment(f"{note} in the formula.")
                self.prep.append(f'{name} = data["{column}"].to_numpy(dtype=float)')
            else:
                names = {c: self.array(c) for c in derived.columns}
                if column.startswith(("scale(", "standardize(", "center(")):
                    self.prep.append(
                        f"# {column}, the data's mean and SD as numbers: new rows scale alike"
                    )
                self.prep.append(f"{name} = {_renamed(derived.expression, names)}  # {column}")
            self._data_vars[key] = name
        return self._data_vars[key]

    def numeric(self, column: str) -> str:
        """The pm.Data tensor of a numeric or computed column."""
        key = ("num", column)
        if key not in self._data_vars:
            name = self.array(column)
            # Named by the column, unless its Python name differs: a computed column's
            # (`x_pow_2` for I(x^2)), or a name build() takes itself (`sigma_col`: a pm.Data
            # named "sigma" would clash with the parameter sigma).
            label = column if name == column else name
            self.data_lines.append(f'{name}_ = pm.Data("{label}", {name}, dims="obs")')
            self._data_vars[key] = f"{name}_"
        return self._data_vars[key]

    def factor(self, factor: tuple[str, ...], effect_coord: bool) -> str:
        """The pm.Data index of a categorical column or grouping, and its coords."""
        name = joined(factor)
        key = ("idx", factor)
        if key not in self._data_vars:
            self.levels(factor, effect_coord)
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

    def levels(self, factor: tuple[str, ...], effect_coord: bool = False) -> str:
        """`NAME_idx, NAME_levels` in build(): each row's level (0, 1, ...) and the levels."""
        name = joined(factor)
        key = ("levels", factor)
        if key in self._data_vars:
            return name
        self._data_vars[key] = name
        if len(factor) == 1:
            source = f'data["{factor[0]}"]'
            what = f"column '{factor[0]}' is"
        else:
            # Joined as text, an empty cell would read "nan": keep it missing instead.
            cells = ", ".join(f'"{f}"' for f in factor)
            source = ' + ":" + '.join(f'data["{f}"].astype(str)' for f in factor)
            source = f"({source}).where(data[[{cells}]].notna().all(axis=1))"
            what = "columns " + " or ".join(f"'{f}'" for f in factor) + " are"
        column = factor[0] if len(factor) == 1 else None
        if column in self.columns.references:
            reference = self.columns.references[column]
            chosen = self.spec.reference(column)
            self.prep += comment(
                f"{column}: treatment coding with the reference level {reference!r}, chosen by "
                f"{chosen.source}: it gets no coefficient, each other level's effect is its "
                "difference from it. Change it here."
            )
            self.prep += [
                f"{name}_cat = pd.Categorical({source})",
                f"{name}_cat = {name}_cat.reorder_categories("
                f"[{reference!r}, *{name}_cat.categories.drop({reference!r})])",
                f"{name}_idx, {name}_levels = {name}_cat.codes, {name}_cat.categories",
            ]
        else:
            if effect_coord:
                reference = self.columns.categorical[factor[0]]
                self.prep += comment(
                    f"{factor[0]}: treatment coding; the first level in sorted order is the "
                    f"reference (now {reference!r}), each other level's effect is its "
                    "difference from it."
                )
            self.prep.append(f"{name}_idx, {name}_levels = pd.factorize({source}, sort=True)")
        self.prep += [
            f"if ({name}_idx < 0).any():",
            "    # factorize codes an empty cell as -1, which would index the last level.",
            f"    rows = data.index[{name}_idx < 0].tolist()",
            f'    raise ValueError(f"{what} empty at rows {{rows}}; "'
            '"drop or fill them in data.py")',
        ]
        return name

    def level_rows(self, factor: tuple[str, ...]) -> str:
        """The pm.Data of a row of each level of a grouping (its first), to read what is
        constant within a level."""
        name = joined(factor)
        key = ("rows", factor)
        if key not in self._data_vars:
            self.levels(factor)
            self.prep += comment(
                f"A row of each level of {':'.join(factor)} (its first), to read there what is "
                "constant within a level."
            )
            self.prep.append(f"{name}_row = np.unique({name}_idx, return_index=True)[1]")
            coord = self.level_coord(name)
            self.data_lines.append(
                f'{name}_row_ = pm.Data("{name}_row", {name}_row, dims="{coord}")'
            )
            self._data_vars[key] = f"{name}_row_"
        return self._data_vars[key]

    def at_levels(self, expression: str, factor: tuple[str, ...]) -> str:
        """A by-row expression of the linear predictor, at a row of each level of `factor`."""
        row = self.level_rows(factor)
        tensors = [v for k, v in self._data_vars.items() if k[0] in ("num", "idx")]
        pattern = r"\b(" + "|".join(map(re.escape, tensors)) + r")(?!\w)"
        return re.sub(pattern, rf"\1[{row}]", expression)

    def product(self, variables: tuple[str, ...]) -> tuple[str, str]:
        """(tensor product of the numeric columns, numpy expression of the same) or ('', '')."""
        numeric = [v for v in variables if v in self.columns.numeric]
        if not numeric:
            return "", ""
        tensors = " * ".join(self.numeric(v) for v in numeric)
        arrays = " * ".join(self.array(v) for v in numeric)
        return tensors, arrays if len(numeric) == 1 else f"({arrays})"


def codings(terms, categorical) -> dict[Term, dict[str, bool]]:
    """For each term, whether each of its categorical columns is coded by treatment contrasts
    (True) or by an indicator of every level (False), by R's rule (model.matrix, as lme4 codes
    a model): a column is coded by contrasts when the term without it is empty or lies
    within an earlier term; without an intercept, the first one is coded by every level."""
    codes: dict[Term, dict[str, bool]] = {}
    earlier: list[set[str]] = []
    spanned = INTERCEPT in terms
    for term in terms:
        if term.is_intercept:
            continue
        code = {}
        for v in term.variables:
            if v in categorical:
                rest = set(term.variables) - {v}
                code[v] = not rest or any(rest <= seen for seen in earlier)
        if code and not spanned:
            code[next(iter(code))] = False
            spanned = True
        codes[term] = code
        earlier.append(set(term.variables))
    return codes


def _renamed(expression: str, names: dict[str, str]) -> str:
    """A computed column's expression over the Python names of the columns it reads."""
    import ast

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            return ast.copy_location(ast.Name(names.get(node.id, node.id), node.ctx), node)

        def visit_BinOp(self, node):
            # x - (-0.047) as a person writes it, x + 0.047 (a mean frozen by `frozen`)
            self.generic_visit(node)
            right = node.right
            if (
                isinstance(node.op, (ast.Add, ast.Sub))
                and isinstance(right, ast.UnaryOp)
                and isinstance(right.op, ast.USub)
                and isinstance(right.operand, ast.Constant)
            ):
                op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
                return ast.copy_location(ast.BinOp(node.left, op, right.operand), node)
            return node

    return ast.unparse(Rename().visit(ast.parse(expression, mode="eval")))
