"""The compiled-model cache (mlm/compiled.py): nutpie's callbacks reused across processes,
never for a model or data they were not compiled for, and identical draws either way."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlm import MlmError, Project

from conftest import run_mlm

# One process: build a small hierarchical model, compile it through nutpie (with mlm's
# cache or without), sample with a fixed seed and report what the cache did.
SCRIPT = """
import json, sys
import numpy as np, nutpie, pymc as pm
from mlm import compiled

mode, shift, observed_as = sys.argv[1], float(sys.argv[2]), sys.argv[3]
per_group, groups, salt = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
rng = np.random.default_rng(3)
group = np.repeat(np.arange(groups), per_group)
y = 1.0 + rng.normal(0, 0.7, groups)[group] + rng.normal(0, 1, group.size) + shift
with pm.Model(coords={"group": range(groups)}) as model:
    g = pm.Data("g", group)
    observed = pm.Data("y_obs", y) if observed_as == "data" else y
    mu = pm.Normal("mu", 0, 5 + salt)  # a constant of the graph: another salt, another key
    tau = pm.HalfNormal("tau", 1)
    z = pm.Normal("z", 0, 1, dims="group")
    sigma = pm.HalfNormal("sigma", 2)
    pm.Normal("y", mu + z[g] * tau, sigma, observed=observed)
with compiled.persistent(mode == "cached") as counts:
    nutpie_model = nutpie.compile_pymc_model(model)
trace = nutpie.sample(nutpie_model, draws=300, tune=300, chains=2, seed=7, progress_bar=False)
print(json.dumps({
    "counts": vars(counts),
    "mu": trace.posterior["mu"].to_numpy().ravel().tolist(),
}))
"""


def fit(
    tmp: Path,
    mode: str,
    shift: float = 0.0,
    observed_as: str = "data",
    per_group: int = 5,
    groups: int = 6,
    salt: float = 0.0,
) -> dict:
    script = tmp / "compile_once.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [
            *(sys.executable, str(script), mode, str(shift), observed_as),
            *(str(per_group), str(groups), repr(salt)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_reuses_the_compiled_model_and_draws_the_same(tmp_path: Path):
    fit(tmp_path, "cached")  # compiles, or finds what an earlier run stored
    again = fit(tmp_path, "cached")
    assert again["counts"] == {"loaded": 1, "compiled": 0, "fallback": 0}
    plain = fit(tmp_path, "plain")
    assert plain["counts"] == {"loaded": 0, "compiled": 0, "fallback": 0}
    # Same seed, same model: the reused callbacks give exactly nutpie's own draws.
    np.testing.assert_array_equal(again["mu"], plain["mu"])


@pytest.mark.slow
def test_changed_data_is_never_sampled_with_the_old_data(tmp_path: Path):
    for observed_as in ("data", "constant"):
        fit(tmp_path, "cached", 0.0, observed_as)
        shifted = fit(tmp_path, "cached", 10.0, observed_as)
        reference = fit(tmp_path, "plain", 10.0, observed_as)
        np.testing.assert_array_equal(shifted["mu"], reference["mu"])
        assert np.mean(shifted["mu"]) > 8  # the +10 shift, not the first fit's data
    # pm.Data reaches the callbacks at run time: the same compiled model serves new values.
    assert fit(tmp_path, "cached", 20.0, "data")["counts"]["loaded"] == 1
    # More rows: served right, whether the compiled model is reused or compiled anew.
    longer = fit(tmp_path, "cached", 0.0, "data", per_group=9)
    np.testing.assert_array_equal(longer["mu"], fit(tmp_path, "plain", 0.0, "data", 9)["mu"])


@pytest.mark.slow
def test_more_rows_reuse_the_compiled_model_and_new_group_levels_compile_anew(tmp_path: Path):
    fit(tmp_path, "cached", per_group=5)
    # The rows live in pm.Data, and the callbacks know only the free variables: 6 groups
    # with 9 rows each load the model compiled for 5 rows each, and sample the new data.
    longer = fit(tmp_path, "cached", per_group=9)
    assert longer["counts"] == {"loaded": 1, "compiled": 0, "fallback": 0}
    np.testing.assert_array_equal(longer["mu"], fit(tmp_path, "plain", per_group=9)["mu"])
    # A seventh group is a seventh free z: nutpie lays the free variables out at compile
    # time (N_DIM and the slices of the joined vector), so that is a new compiled model.
    # The compiled models live in ~/.pytensor, which outlives this test: a salt of this run
    # alone in a prior scale makes a model no earlier run can have compiled.
    salt = 1e-9 * (1 + time.time_ns() % 1_000_003)
    fit(tmp_path, "cached", groups=6, salt=salt)
    wider = fit(tmp_path, "cached", groups=7, salt=salt)
    assert wider["counts"] == {"loaded": 0, "compiled": 1, "fallback": 0}
    np.testing.assert_array_equal(wider["mu"], fit(tmp_path, "plain", groups=7, salt=salt)["mu"])


@pytest.mark.slow
def test_a_model_with_over_a_megabyte_of_data_is_cached_too(tmp_path: Path):
    # 150,000 rows: each pm.Data array is over the 1 MB that numba freezes into code.
    big = 25_000
    fit(tmp_path, "cached", per_group=big)
    again = fit(tmp_path, "cached", 1.0, per_group=big)
    assert again["counts"] == {"loaded": 1, "compiled": 0, "fallback": 0}
    # The new data, not the first fit's (identical draws are pinned by the tests above).
    assert (
        abs(np.mean(again["mu"]) - np.mean(fit(tmp_path, "plain", 0.0, per_group=big)["mu"])) > 0.5
    )


@pytest.mark.slow
def test_mlm_run_fit_after_rows_were_added_reuses_the_compiled_model(fitted_dir: Path):
    import pandas as pd
    import xarray as xr

    csv = fitted_dir / "data" / "scores.csv"
    scores = pd.read_csv(csv)
    more = scores.assign(pupil=scores["pupil"] + len(scores), score=scores["score"] + 1.0)
    pd.concat([scores, more]).to_csv(csv, index=False)
    done = run_mlm("run", "fit", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "compiled model reused from disk" in done.stderr
    cached = xr.load_datatree(_latest_trace(fitted_dir))
    assert cached["observed_data"]["score"].size == 2 * len(scores)
    # The same fit with nutpie compiling the model itself: the very same draws.
    toml = fitted_dir / "mlm.toml"
    toml.write_text(toml.read_text() + "\n[fit]\ncompile_cache = false\n")
    done = run_mlm("run", "fit", "--force", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "reused" not in done.stderr
    plain = xr.load_datatree(_latest_trace(fitted_dir))
    np.testing.assert_array_equal(
        cached["posterior"]["intercept"].to_numpy(), plain["posterior"]["intercept"].to_numpy()
    )


def _latest_trace(root: Path) -> Path:
    key = json.loads((root / ".mlm" / "fit" / "model" / "latest.json").read_text())["key"]
    return root / ".mlm" / "fit" / "model" / key / "trace.nc"


def test_when_its_callbacks_do_not_compile_nutpie_compiles_as_usual(monkeypatch):
    import nutpie
    import pymc as pm
    from nutpie import compile_pymc

    from mlm import compiled

    # A callback numba cannot type, as when nutpie's extraction function changes its shape.
    broken = "def mlm_logp(dim, x_, out_, logp_, user_data_):\n    return extract.moved\n"
    monkeypatch.setattr(compiled, "LOGP_SOURCE", broken)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("y", mu, 1, observed=np.array([0.1, -0.3, 0.4]))
    with compiled.persistent() as counts:
        result = nutpie.compile_pymc_model(model)
    assert vars(counts) == {"loaded": 0, "compiled": 0, "fallback": 1}
    trace = nutpie.sample(result, draws=50, tune=50, chains=1, seed=1, progress_bar=False)
    assert trace.posterior["mu"].size == 50
    assert compile_pymc._compile_pymc_model_numba is not compiled.compile_numba  # restored


@pytest.mark.slow
def test_mlm_run_fit_says_when_it_reused_a_compiled_model(fitted_dir: Path):
    done = run_mlm("run", "fit", "--force", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "compiled model reused from disk" in done.stderr
    toml = fitted_dir / "mlm.toml"
    toml.write_text(toml.read_text() + "\n[fit]\ncompile_cache = false\n")
    done = run_mlm("run", "fit", "--force", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "sampled in" in done.stderr and "reused" not in done.stderr


def test_compile_cache_setting_must_be_a_boolean(fitted_dir: Path):
    toml = fitted_dir / "mlm.toml"
    toml.write_text(toml.read_text() + '\n[fit]\ncompile_cache = "yes"\n')
    with pytest.raises(MlmError, match=r"mlm.toml: \[fit\] compile_cache must be true or false"):
        Project(fitted_dir)
