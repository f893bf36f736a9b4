"""codegen's centred / non-centred choice per group term (mlm/codegen/groups.py, the numbers
from mlm/codegen/information.py): centred only when each level's data say more about its
effect than the population distribution does, n * sigma_g^2 / sigma^2 >= 1, even at the
lower end of that ratio's 90 % interval, which is low when there are few levels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mlm.codegen import model_source
from mlm.codegen.columns import classify_columns
from mlm.codegen.information import group_information
from mlm.formula import parse


def simulated(groups: int, rows: int, sd_group: float, sd_slope: float = 0.0, seed: int = 1):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), rows)
    x = np.tile(np.linspace(-1, 1, rows), groups)
    u = rng.normal(0, sd_group, groups)[g]
    v = rng.normal(0, sd_slope, groups)[g] if sd_slope else 0.0
    y = 10 + 2 * x + u + v * x + rng.normal(0, 1, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def form(text: str, name: str) -> str:
    # the code, not the comment that gives the other form's lines
    if re.search(rf'^\s*z_{name} = pm.Normal\("z_{name}"', text, re.MULTILINE):
        return "non-centred"
    assert f'"a_{name}"' in text or f'"u_{name}"' in text, text
    return "centred"


@pytest.mark.parametrize(
    ("groups", "rows", "sd_group", "expected"),
    [
        # many informative levels: centred (the old rule agreed: >= 6 rows)
        (40, 20, 1.0, "centred"),
        # few rows, a small SD: non-centred (the old rule agreed: < 6 rows)
        (40, 3, 0.2, "non-centred"),
        # 6 levels of 12 rows (MASS's oats' blocks): the estimate says informative, but with
        # 5 degrees of freedom the SD may be far smaller; the old rule centred it (>= 6 rows)
        (6, 12, 0.6, "non-centred"),
        # many rows per level but an SD near 0: the data say nothing about each effect
        (40, 12, 0.05, "non-centred"),
    ],
)
def test_the_form_follows_the_information_per_level(groups, rows, sd_group, expected):
    data = simulated(groups, rows, sd_group)
    text = model_source(parse("y ~ x + (1 | g)"), data)
    assert form(text, "g") == expected
    # model.py says which and why, with the numbers (its comments joined across lines)
    text = re.sub(r"\n\s*# ", " ", text)
    why = "data say more about" if expected == "centred" else "data may say less about"
    assert why in text and "n sigma_g^2 / sigma^2" in text and " df)" in text


def test_a_weakly_identified_slope_non_centres_its_term():
    # Orthodont's shape: informative intercepts, a slope SD below its per-level SE
    data = simulated(30, 4, 2.0, sd_slope=0.1, seed=3)
    spec = parse("y ~ x + (x | g)")
    info = group_information(spec, classify_columns(spec, data), data)
    assert info[("g",)].info_low > 1 and info[(("g",), ("x",))][1] < 1
    assert form(model_source(spec, data), "g") == "non-centred"


def test_a_nested_grouping_is_judged_on_its_subgroups_means():
    # blocks holding plots holding rows: a block's mean is noisy through its plots' effects
    rng = np.random.default_rng(5)
    block = np.repeat(np.arange(6), 12)
    plot = np.repeat(np.arange(18), 4)
    y = rng.normal(0, 1.0, 6)[block] + rng.normal(0, 1.0, 18)[plot] + rng.normal(0, 1, 72)
    data = pd.DataFrame({"y": y, "B": [f"b{k}" for k in block], "P": [f"p{k % 3}" for k in plot]})
    spec = parse("y ~ 1 + (1 | B/P)")
    info = group_information(spec, classify_columns(spec, data), data)
    assert info[("B",)].units == "means of B:P" and info[("B",)].df == (5, 12)
    assert info[("B", "P")].df == (12, 54)


def test_an_observation_level_effect_leaves_the_others_their_residual():
    # lme4's grouseticks example: (1 | INDEX), a level per row, models overdispersion. It is
    # part of the residual: taken out as a fixed effect it left no residual, so no grouping
    # had an ANOVA and all fell back to the rows-per-level rule.
    rng = np.random.default_rng(8)
    brood = np.repeat(np.arange(60), 4)
    eta = 1.0 + rng.normal(0, 1.0, 60)[brood] + rng.normal(0, 0.3, brood.size)
    data = pd.DataFrame(
        {"y": rng.poisson(np.exp(eta)), "b": [f"b{k}" for k in brood], "i": np.arange(brood.size)}
    )
    spec = parse("y ~ 1 + (1 | b) + (1 | i)", family="poisson")
    info = group_information(spec, classify_columns(spec, data), data)
    assert info[("b",)].info_low > 1 and info[("b",)].df == (59, 180)
    assert ("i",) not in info  # one row per level: nothing within a level to compare with
    text = model_source(spec, data)
    assert form(text, "b") == "centred" and form(text, "i") == "non-centred"


def test_one_mean_per_level_is_said_in_the_singular_and_a_glm_names_its_sigma():
    """grouseticks' LOCATION holds a median of 1 BROOD: model.py said "1 means of BROOD".
    In a Poisson or binomial model, sigma^2 of the rule is the variance within levels on
    the response's scale (there is no residual sigma): the comment says so."""
    from mlm.codegen import model_source

    rng = np.random.default_rng(2)
    broods = [1] * 20 + [3] * 10  # broods per location: median 1
    location = np.repeat(np.arange(30), broods)
    brood = np.repeat(np.arange(location.size), 4)
    y = rng.poisson(np.exp(1 + rng.normal(0, 0.5, location.size)[brood]))
    data = pd.DataFrame(
        {"y": y, "L": [f"l{location[b]}" for b in brood], "B": [f"b{b}" for b in brood]}
    )
    text = " ".join(
        line.strip().lstrip("# ")
        for line in model_source(parse("y ~ 1 + (1 | L) + (1 | B)", family="poisson"), data)
        .split("def build", 1)[1]
        .splitlines()
    )
    assert "median 4 rows, 1 mean of B)" in text and "1 means" not in text
    assert "n sigma_g^2 / sigma^2, sigma^2 the variance within levels on the response's" in text
    gaussian = model_source(parse("y ~ 1 + (1 | L) + (1 | B)"), data)
    assert "the variance within levels" not in gaussian
