"""The figures `mlm new --formula` writes show what an lme4 user reads, not sampling helpers.

A correlated term centred on the intercept samples `a_g` (the group intercepts around the
intercept), `chol_g` (a packed Cholesky factor) and `Intercept_centred`, and reports
`u_g`, `sigma_g`, `corr_g` and `Intercept`: coefficients() shows the reported ones, each
correlation once and not its diagonal of 1s; group_effects() gives each effect its panel.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pymc as pm

from mlm.codegen import graphics_source, model_source
from mlm.formula import parse

FORMULA = "y ~ x + (1 + x | g)"


def _data() -> pd.DataFrame:
    """12 groups of 8 rows (centred on the intercept: >= 6 rows per level)."""
    rng = np.random.default_rng(4)
    g = np.repeat([f"g{i:02d}" for i in range(12)], 8)
    x = rng.normal(size=g.size)
    a, b = rng.normal(0, 1.0, 12), rng.normal(0, 0.5, 12)
    idx = np.repeat(np.arange(12), 8)
    return pd.DataFrame(
        {"y": 1 + a[idx] + (0.5 + b[idx]) * x + rng.normal(0, 0.5, g.size), "x": x, "g": g}
    )


def _module(source: str, name: str) -> dict:
    space: dict = {"__name__": name}
    exec(compile(source, f"{name}.py", "exec"), space)
    return space


def test_coefficients_and_group_effects_show_the_reported_parameters():
    data = _data()
    spec = parse(FORMULA)
    model_text = model_source(spec, data)
    assert 'a_g = pm.MvNormal("a_g"' in model_text  # the form this test is about
    model = _module(model_text, "model")["build"](data)
    with model:
        idata = pm.sample(draws=100, tune=200, chains=2, random_seed=3, progressbar=False)
    graphics = _module(graphics_source(spec), "graphics")

    fig = graphics["coefficients"](idata)
    # a panel for each variable, on its own scale (an intercept of 149 squashed a slope of
    # 6.5; a diet's offset of 200, a slope of 0.4), the correlations together, named as
    # mlm summary names them, in its order
    shown = [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes]
    assert shown == [
        ["Intercept"],
        ["b_x"],
        ["sigma_g[Intercept]", "sigma_g[x]"],
        ["sigma"],
        ["corr_g[Intercept, x]"],
    ]
    assert fig._suptitle.get_text() == "Posterior means and 95% intervals"
    # the intervals are the 95% ones mlm summary prints
    intercept = idata["posterior"]["Intercept"].to_numpy().reshape(-1)
    line = fig.axes[0].collections[0].get_segments()[0]
    assert np.allclose([line[0][0], line[1][0]], np.quantile(intercept, [0.025, 0.975]))

    fig = graphics["group_effects"](idata)
    assert [ax.get_title() for ax in fig.axes] == ["u_g[Intercept]", "u_g[x]"]
    for ax in fig.axes:
        assert len(ax.get_yticklabels()) == 12


def test_a_grouping_with_hundreds_of_levels_draws_a_readable_figure():
    """lme4's grouseticks has 403 levels of INDEX: the panel named each one, and the figure
    was 153 inches tall with its title inside a panel. Past 60 levels the panel shows
    the sorted intervals without names, and the figure keeps a readable height."""
    import xarray as xr

    spec = parse("y ~ x + (1 | g) + (1 | h)")
    graphics = _module(graphics_source(spec), "graphics")
    rng = np.random.default_rng(1)
    posterior = xr.Dataset(
        {
            "u_g": (("chain", "draw", "g"), rng.normal(size=(2, 50, 403))),
            "u_h": (("chain", "draw", "h"), rng.normal(size=(2, 50, 12))),
        },
        coords={"g": [f"i{k}" for k in range(403)], "h": [f"h{k}" for k in range(12)]},
    )
    fig = graphics["group_effects"](xr.DataTree.from_dict({"posterior": posterior}))
    assert fig.get_size_inches()[1] <= 0.25 * 60 + 2
    many, few = fig.axes
    assert many.get_yticklabels() == [] and many.get_ylabel() == "403 levels, sorted by their means"
    assert len(few.get_yticklabels()) == 12 and few.get_ylabel() == ""
    assert len(many.lines[0].get_xdata()) == 403  # every level is still drawn
