"""Prior scales written as numbers in a formula-generated model.py (issue #14).

Generated priors are scaled from the data (the outcome's SD, each predictor's SD). They are
written into model.py as numbers computed when the file was written, so a data-only change
keeps the PyTensor graph and reuses the compiled model; `mlm run` warns when the data's
statistic has moved by more than a factor of 2 from the number written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_formula import FORMULAS, PRIORS
from test_formula_data import read_as_r
from test_formula_families import FAMILIES, positive
from validation.corpus import CASES as CORPUS
from validation.corpus import DATA as CORPUS_DATA

from mlm import scales
from mlm.codegen import model_source
from mlm.formula import parse

from conftest import FAST_FIT, run_mlm

# Every golden formula, and each family's: (formula, --sigma, --family, --prior texts).
CASES = {
    **{name: (*FORMULAS[name], PRIORS.get(name, ())) for name in FORMULAS},
    **{family: (f"{y} ~ x + (1 | g)", None, family, ()) for family, y in FAMILIES.items()},
}


def _build(source: str, data: pd.DataFrame):
    """build(data) of `source`, and build()'s local variables as it returned."""
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)
    build = namespace["build"]
    return scales.captured(build, lambda: build(data))


def _source(name: str, data: pd.DataFrame) -> str:
    formula, sigma, family, priors = CASES[name]
    return model_source(parse(formula, sigma=sigma, family=family, priors=priors), data)


def _constants(model) -> list:
    """The constants of the model's log density graph, in graph order."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    return [
        np.asarray(v.data).tolist() for v in ancestors([model.logp()]) if isinstance(v, Constant)
    ]


@pytest.mark.parametrize("name", CASES)
def test_each_written_number_is_what_build_computed_from_the_same_data(name):
    # The priors are the numbers build() computed from the data before (so the validation
    # corpus' checks against published estimates hold as before): each literal is its
    # expression evaluated on build()'s own arrays, to the 4 significant figures written.
    data = positive()
    source = _source(name, data)
    numbers = scales.written(source)
    _, local = _build(source, data)
    for number, expression in numbers.values():
        assert number == float(f"{eval(expression, {'np': np}, local):.4g}"), expression
    assert scales.stale(numbers, local) == []
    if "y_sd = " in source or "x_sd = " in source:
        assert numbers, "a statistic is written but not found by mlm.scales"
    # No statistic is computed in build() any longer: the priors read names, not .std().
    code = [line.split("#")[0] for line in source.splitlines()]
    assert not any(".std()" in line or ".mean()" in line for line in code), name


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_the_validation_corpus_gets_the_priors_it_had(case):
    # The corpus' published-estimate checks fit these data with the generated priors: the
    # numbers now written are the ones build() computed before (to 4 significant figures).
    data = read_as_r(CORPUS_DATA / case.csv)
    source = model_source(parse(case.formula, family=case.family), data)
    numbers = scales.written(source)
    _, local = _build(source, data)
    for number, expression in numbers.values():
        computed = float(eval(expression, {"np": np}, local))
        assert number == float(f"{computed:.4g}"), (case.name, expression)


@pytest.mark.parametrize("name", ["intercept_slope", "lme4_calls", "factor_in_group", "gamma"])
def test_new_data_values_leave_the_graphs_constants_as_they_were(name):
    # What the compiled-model key covers: a changed outcome and predictor value change
    # pm.Data only, never a constant of the graph.
    data = positive()
    source = _source(name, data)
    changed = data.copy()
    response = "yg" if name == "gamma" else "y"
    changed.loc[0, response] = changed[response].iloc[0] * 3 + 1
    changed.loc[1, "x"] = changed["x"].iloc[1] + 5
    (before, _), (after, _) = _build(source, data), _build(source, changed)
    assert _constants(before) == _constants(after)


def test_a_number_far_from_the_data_is_reported_and_a_near_one_is_not():
    numbers = scales.written(
        "def build(data):\n"
        "    y_mean = 10.0  # y.mean(): the outcome's mean\n"
        "    y_sd = 2.0  # y.std(): the outcome's SD\n"
        "    x_sd = 1.0  # x.std()\n"
        "    z_sd = 1.0  # no statistic, not checked\n"
    )
    assert set(numbers) == {"y_mean", "y_sd", "x_sd"}
    standard = np.random.default_rng(1).standard_normal(1000)
    standard = (standard - standard.mean()) / standard.std()
    x = standard.copy()
    # The outcome's mean moved by 0.9 SD, its SD by 1.5x, x's SD by 1/1.9: within bounds.
    near = {"y": 11.8 + 3.0 * standard, "x": x / 1.9}
    assert scales.stale(numbers, near) == []
    # Its mean moved by 1.5 written SDs, its SD by 2.5x, x's SD by 1/3: each said.
    far = {"y": 13.0 + 5.0 * standard, "x": x / 3}
    messages = scales.stale(numbers, far)
    assert len(messages) == 3, messages
    assert messages[0].startswith("prior scale y_mean = 10 (y.mean() on the data")
    assert "is 13 on these data, 1.5 times y_sd away" in messages[0]
    assert "y_sd = 2 " in messages[1] and "2.5 times as large" in messages[1]
    assert "x_sd = 1 " in messages[2] and "0.33 times as large" in messages[2]
    assert all("mlm generate model --formula ... --force" in m for m in messages)
    # An expression build() cannot evaluate any longer (an edited file) is left alone.
    assert scales.stale(numbers, {}) == []


def _data(seed: int, rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(6)], rows // 6)
    x = rng.normal(3.0, 2.0, rows)
    u = dict(zip(sorted(set(g)), rng.normal(0, 0.5, 6), strict=True))
    y = 10 + 0.5 * x + np.array([u[v] for v in g]) + rng.normal(0, 1.0, rows)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def _latest_trace(root: Path) -> Path:
    key = json.loads((root / ".mlm" / "fit" / "model" / "latest.json").read_text())["key"]
    return root / ".mlm" / "fit" / "model" / key / "trace.nc"


@pytest.mark.slow
def test_changing_an_outcome_value_reuses_the_compiled_formula_model(tmp_path: Path):
    import xarray as xr

    # Data no earlier run can have compiled a model for (~/.pytensor outlives the test).
    csv = tmp_path / "survey.csv"
    _data(time.time_ns() % 2**32).to_csv(csv, index=False)
    done = run_mlm("new", "proj", "--formula", "y ~ x + (1 | g)", "--data", str(csv), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "proj"
    (root / "fit.py").write_text(FAST_FIT)
    done = run_mlm("run", "fit", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "prior scale" not in done.stderr  # the data model.py was written for: no warning
    before = xr.load_datatree(_latest_trace(root))

    # One outcome value changes, far out: the SD of y grows several-fold.
    data_csv = root / "data" / "survey.csv"
    data = pd.read_csv(data_csv)
    data.loc[0, "y"] = data["y"].iloc[0] + 60.0
    data.to_csv(data_csv, index=False)
    done = run_mlm("run", "fit", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "compiled model reused from disk" in done.stderr
    after = xr.load_datatree(_latest_trace(root))
    # The posterior is the new data's: the observed value changed, and the residual SD
    # grew to take in the outlier.
    assert after["observed_data"]["y"].to_numpy()[0] == pytest.approx(data.loc[0, "y"])
    sigma_before = float(before["posterior"]["sigma"].mean())
    sigma_after = float(after["posterior"]["sigma"].mean())
    assert sigma_after > 3 * sigma_before
    # And mlm says the written scale is stale now, naming the number and how to renew it.
    assert "y_sd" in done.stderr and "prior scale" in done.stderr, done.stderr
