"""Python names in the generated model.py: of a column's array, a factor, a group term."""

from __future__ import annotations

import keyword

from mlm.formula import GroupTerm, slug

# Names the generated build() uses itself, for its Python variables or its parameters
# (`theta`, `Intercept`); a column with one of them gets a suffix, in Python and in pm.Data.
RESERVED = {
    "data",
    "model",
    "coords",
    "mu",
    "eta",
    "sigma",
    "sigma2",
    "nu",
    "theta",
    "shape",
    "phi",
    "zi",
    "Intercept",
    "y_sd",
    "y_mean",
    "np",
    "pd",
    "pm",
    "pt",
    "intercept",
    "build",
}


def python_name(column: str) -> str:
    """The Python name of a column's numpy array (of a computed one: `I(x^2)` -> x_pow_2)."""
    column = slug(column)
    return f"{column}_col" if column in RESERVED or keyword.iskeyword(column) else column


def joined(names: tuple[str, ...]) -> str:
    """One name for several columns (an interaction, a nested grouping): `a_by_b`."""
    return "_by_".join(slug(n) for n in names)


def group_names(groups: tuple[GroupTerm, ...]) -> list[str]:
    """The suffix of each group term's parameters (sigma_NAME, z_NAME, u_NAME), all distinct."""
    names = []
    for group in groups:
        base = joined(group.factor)
        if len(group.terms) == 1 and not group.terms[0].is_intercept:
            base = f"{base}_{joined(group.terms[0].variables)}"
        name = base
        if name in names:
            name = f"{base}_{'_'.join(joined(t.variables) or 'Intercept' for t in group.terms)}"
        names.append(name)
    return names
