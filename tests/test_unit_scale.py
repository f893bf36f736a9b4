"""Population effects with a narrow prior are sampled on the unit scale (mlm/codegen/body.py,
`BuildBody.normal`): `z_b ~ Normal(0, 1)`, `b = mu + z_b * scale`, the same prior, so that
a sampler's start, jittered by up to +-1, is at most a prior SD out. lme4's grouseticks
(a slope per metre of altitude, prior SD 0.07, Poisson) had 3 of 4 chains stuck at their
start; tests/test_diagnosis_forms.py samples that case with and without the unit scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlm.codegen import body as codegen_body
from mlm.codegen import model_source
from mlm.formula import parse


def altitude(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), 20)
    x = rng.normal(500, 35, g.size).round(1)
    y = rng.poisson(np.exp(0.5 - 0.02 * (x - 500) + rng.normal(0, 0.3, 20)[g]))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k}" for k in g]})


def proportions(seed: int = 1) -> pd.DataFrame:
    """A Gaussian outcome with an SD of about 0.05, and a three-level factor."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 10)
    a = np.tile(["lo", "mid", "hi"], 40)
    y = 0.5 + 0.03 * (a == "hi") + rng.normal(0, 0.02, 12)[g] + rng.normal(0, 0.04, g.size)
    return pd.DataFrame({"y": y, "a": a, "g": [f"g{k}" for k in g]})


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_a_narrow_slope_is_sampled_on_the_unit_scale():
    text = model_source(parse("y ~ x + (1 | g)", family="poisson"), altitude())
    assert 'z_b_x = pm.Normal("z_b_x", mu=0, sigma=1)' in lines(text)
    assert 'b_x = pm.Deterministic("b_x", z_b_x * 2.5 / x_sd)' in lines(text)
    assert "x_sd = 34.8" in text  # the written SD: the prior is 2.5 / 34.8 = 0.072
    said = " ".join(line.lstrip("# ") for line in lines(text) if line.startswith("#"))
    assert "its prior SD (0.072) is small" in said and "up to 14 prior SDs out" in said


def test_a_prior_given_for_it_is_written_as_given():
    spec = parse("y ~ x + (1 | g)", family="poisson", priors=["b_x=Normal(0, 0.05)"])
    text = model_source(spec, altitude())
    assert 'b_x = pm.Normal("b_x", mu=0, sigma=0.05)' in lines(text)
    assert "z_b_x" not in text


def test_a_wide_prior_is_sampled_as_it_is():
    data = altitude()
    data["x"] = (data["x"] - 500) / 35  # SD about 1: the prior SD is about 2.5
    text = model_source(parse("y ~ x + (1 | g)", family="poisson"), data)
    assert 'b_x = pm.Normal("b_x", mu=0, sigma=2.5 / x_sd)' in lines(text)
    assert "z_b_x" not in text


def test_a_factor_coded_by_every_level_keeps_its_mean():
    text = model_source(parse("y ~ 0 + a + (1 | g)"), proportions())
    assert 'z_b_a = pm.Normal("z_b_a", mu=0, sigma=1, dims="a")' in lines(text)
    assert 'b_a = pm.Deterministic("b_a", y_mean + z_b_a * 5 * y_sd, dims="a")' in lines(text)
    # and treatment contrasts beside an intercept: two effects, centred on 0
    text = model_source(parse("y ~ a + (1 | g)"), proportions())
    expected = 'b_a = pm.Deterministic("b_a", z_b_a * 2.5 * y_sd, dims="a_effect")'
    assert expected in lines(text)


def build(formula: str, data: pd.DataFrame, family: str = "gaussian"):
    namespace: dict = {}
    exec(compile(model_source(parse(formula, family=family), data), "model.py", "exec"), namespace)
    return namespace["build"](data)


@pytest.mark.parametrize(
    ("formula", "data", "family", "name"),
    [
        ("y ~ x + (1 | g)", altitude, "poisson", "b_x"),
        ("y ~ 0 + a + (1 | g)", proportions, "gaussian", "b_a"),
        ("y ~ a + (1 | g)", proportions, "gaussian", "b_a"),
    ],
    ids=["slope", "every-level", "contrasts"],
)
def test_the_unit_scale_is_the_same_prior(formula, data, family, name, monkeypatch):
    """log p under z equals log p under b = mu + z * scale plus the Jacobian, sum(log scale):
    the same prior and posterior, only another parameter to sample."""
    frame = data()
    unit = build(formula, frame, family)
    monkeypatch.setattr(codegen_body, "UNIT_SCALE", 0.0)
    plain = build(formula, frame, family)
    monkeypatch.undo()
    assert f"z_{name}" in unit.named_vars and f"z_{name}" not in plain.named_vars
    values = unit.compile_fn(
        unit.replace_rvs_by_values([unit[name]]), inputs=unit.value_vars, on_unused_input="ignore"
    )
    rng = np.random.default_rng(5)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in unit.initial_point().items()}
        (b,) = values(point)
        same = {k: v for k, v in point.items() if k != f"z_{name}"}
        same[name] = b
        assert set(same) == set(plain.initial_point())
        # the scale, from two points of the map b = mu + z * scale
        z0 = dict(point, **{f"z_{name}": np.zeros_like(point[f"z_{name}"])})
        (mu,) = values(z0)
        scale = (b - mu) / point[f"z_{name}"]
        jacobian = np.sum(np.log(scale))
        np.testing.assert_allclose(
            plain.compile_logp()(same), unit.compile_logp()(point) - jacobian, rtol=1e-9
        )
