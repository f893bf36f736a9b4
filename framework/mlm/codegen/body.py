"""build()'s body as it is written: its lines, the pm.Data and coords it declares, and
the parameters with their priors (mlm's default, or the one `--prior` gave).

The term modules (population, groups, residual) add their lines to one `BuildBody`;
the writer puts its pieces together into model.py.
"""

from __future__ import annotations

import textwrap

from mlm.codegen.columns import Columns
from mlm.codegen.names import joined, python_name
from mlm.codegen.priors import prior_arguments
from mlm.formula import INTERCEPT, ModelSpec


def comment(text: str, width: int = 88) -> list[str]:
    """`text` as comment lines that fit beside the generated code's indentation."""
    return ["# " + line for line in textwrap.wrap(text, width - 2)]


def call(distribution: str, *arguments: str) -> str:
    """`pm.DISTRIBUTION(arguments)`, leaving out empty ones."""
    return f"pm.{distribution}({', '.join(a for a in arguments if a)})"


class BuildBody:
    """Lines of build()'s body, before and inside the `with pm.Model` block."""

    def __init__(self, spec: ModelSpec, columns: Columns):
        self.spec = spec
        self.columns = columns
        self.prep: list[str] = []
        self.coords: list[str] = ['"obs": data.index.to_numpy(),']
        self.data_lines: list[str] = []
        self.priors: list[str] = []
        self._data_vars: dict[tuple, str] = {}  # column or factor key -> tensor name
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
        return [*comment(why), f"{var or name} = {call(dist, f'"{name}"', args, dims)}"]

    def given_prior(self, name: str, var: str, dims: str, kind: str, default: str) -> list[str]:
        """The lines of the prior --prior gave `name`, said so in their comment."""
        prior = self.given[name]
        arguments = prior_arguments(prior, kind)
        dims = f"dims={dims}" if dims else ""
        square = var.replace("sigma", "sigma2", 1)
        on = f", on the variance {square} ({name} is its square root)" if prior.variance else ""
        note = comment(f"{name}: set by --prior '{prior.source}'{on}.")
        note += comment(f"(mlm's default: {default}.)")  # a line of its own: not broken mid-code
        if not prior.variance:
            return [*note, f"{var} = {call(prior.distribution, f'"{name}"', arguments, dims)}"]
        return [
            *note,
            f"{square} = {call(prior.distribution, f'"{square}"', arguments, dims)}",
            f"{var} = {call('Deterministic', f'"{name}"', f'pm.math.sqrt({square})', dims)}",
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
            name = python_name(column)
            self.prep.append(f'{name} = data["{column}"].to_numpy(dtype=float)')
            self.data_lines.append(f'{name}_ = pm.Data("{column}", {name}, dims="obs")')
            self._data_vars[key] = f"{name}_"
        return self._data_vars[key]

    def factor(self, factor: tuple[str, ...], effect_coord: bool) -> str:
        """The pm.Data index of a categorical column or grouping, and its coords."""
        name = joined(factor)
        key = ("idx", factor)
        if key not in self._data_vars:
            if len(factor) == 1:
                source = f'data["{factor[0]}"]'
                what = f"column '{factor[0]}' is"
            else:
                # Joined as text, an empty cell would read "nan": keep it missing instead.
                cells = ", ".join(f'"{f}"' for f in factor)
                source = ' + ":" + '.join(f'data["{f}"].astype(str)' for f in factor)
                source = f"({source}).where(data[[{cells}]].notna().all(axis=1))"
                what = "columns " + " or ".join(f"'{f}'" for f in factor) + " are"
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
        arrays = " * ".join(python_name(v) for v in numeric)
        return tensors, arrays if len(numeric) == 1 else f"({arrays})"
