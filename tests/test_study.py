"""Simulation studies: real fits of simulated data, their cache, Dask and the report."""

from __future__ import annotations

import json
import math
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlm
from mlm.errors import MlmError
from mlm.store import StorePaths
from mlm.study import rank_uniformity

from calibration import FALSE_ALARM, Region, normal_mean_interval_rate, region
from conftest import REPO, run_mlm
from test_progress import drawn, in_terminal

# A normal mean with known sigma and a wide prior: its posterior intervals are calibrated
# (exactly so under the prior, SBC; near nominal for a fixed truth).
NORMAL_MEAN = {
    "mlm.toml": '[project]\nname = "normal_mean"\nseed = 7\n\n[study]\ndraws = 300\n'
    "tune = 300\nchains = 2\n",
    "data.py": '''"""Twenty draws around a mean."""

import numpy as np
import pandas as pd


def load():
    return simulate(np.random.default_rng(1))


def simulate(rng, n=20, mu=0.0):
    """n observations y ~ Normal(mu, 1)."""
    return pd.DataFrame({"y": rng.normal(mu, 1.0, size=n)})
''',
    "model.py": '''"""A normal mean, sigma known."""

import pymc as pm


def build(data):
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 2)
        pm.Normal("y", mu, 1.0, observed=data["y"].to_numpy())
    return model
''',
    "fit.py": """import pymc as pm


def sample(model, project):
    with model:
        return pm.sample(draws=200, tune=200, chains=2, random_seed=project.seed)
""",
}


@pytest.fixture(scope="module")
def normal_mean(tmp_path_factory) -> Path:
    """One small project for the module: tests use distinct truths, hence distinct keys,
    and the model compiled in this process is reused across them."""
    root = tmp_path_factory.mktemp("study") / "normal_mean"
    root.mkdir()
    for name, text in NORMAL_MEAN.items():
        (root / name).write_text(text)
    return root


def replicate_files(root: Path) -> list[Path]:
    return sorted(StorePaths(root).study_dir("model").glob("*/[0-9]*.json"))


def test_the_study_key_follows_data_py_and_the_model_but_not_their_comments(tmp_path):
    """Replicates are simulated by data.py's simulate(): an edit there must not reuse them."""
    from mlm.study.design import Study

    root = tmp_path / "normal_mean"
    root.mkdir()
    for name, text in NORMAL_MEAN.items():
        (root / name).write_text(text)
    (root / "helpers.py").write_text("SCALE = 1.0\n")
    data_py = root / "data.py"
    data_py.write_text("import helpers\n" + data_py.read_text())

    def key() -> str:
        return Study(str(root), truth={"mu": 0.4}, seed=7).point_key({})

    first = key()
    data_py.write_text(data_py.read_text() + "\n# a comment changes nothing\n")
    assert key() == first
    for path, old, new in [
        (data_py, "rng.normal(mu, 1.0", "rng.normal(mu, 2.0"),  # simulate() itself
        (root / "helpers.py", "1.0", "2.0"),  # a module data.py imports
        (root / "model.py", 'pm.Normal("mu", 0, 2)', 'pm.Normal("mu", 0, 3)'),
    ]:
        source = path.read_text()
        assert old in source
        path.write_text(source.replace(old, new))
        assert key() != first, path.name
        path.write_text(source)
        assert key() == first
    # The truth, the design point and the seed are part of the key too.
    assert Study(str(root), truth={"mu": 0.5}, seed=7).point_key({}) != first
    assert Study(str(root), truth={"mu": 0.4}, seed=8).point_key({}) != first
    assert Study(str(root), truth={"mu": 0.4}, seed=7).point_key({"n": 20}) != first


# The normal mean's posterior is conjugate: the exact coverage and power of its 90%
# interval over simulated data sets are known (calibration.normal_mean_interval_rate), so
# each count is held against the binomial region of its exact rate. Budget of false
# alarms per test (a fresh random stream, a correct mlm): 0.1 % (calibration.FALSE_ALARM).
N_OBS, PRIOR_SD, INTERVAL = 20, 2.0, 0.9
COVERAGE_REPLICATES = 260


def coverage_region(n: int = COVERAGE_REPLICATES) -> Region:
    """Too few covering intervals fail at 0.05 %, too many at 0.01 %: at n = 260 a true
    coverage of 0.80 (nominal 0.90) fails 93 % of the time, false alarms 0.05 %."""
    rate, _ = normal_mean_interval_rate(0.4, N_OBS, PRIOR_SD, INTERVAL)
    low, high = region(n, rate, 0.0005, "lower"), region(n, rate, 0.0001, "upper")
    return Region(n, rate, low.lo, high.hi)


def test_the_coverage_design_has_its_stated_false_alarm_rate_and_power():
    design = coverage_region()
    assert design.false_alarm() <= 0.0006
    assert design.fails_when(0.80) >= 0.90


def test_coverage_is_near_nominal_on_a_calibrated_model(normal_mean):
    n = COVERAGE_REPLICATES
    result = mlm.Project(normal_mean).study(n, truth={"mu": 0.4}, workers=0)
    row = result.row("mu")
    assert row["n"] == n and row["truth"] == 0.4
    hits = round(row["coverage"] * n)
    assert hits in coverage_region(), (hits, str(coverage_region()))
    low, high = row["coverage_interval"]  # Wilson's 95% interval of the count itself
    assert low < row["coverage"] < high and high - low < 0.1
    # The posterior mean is shrunk towards the prior's 0 by a known factor: bias
    # (shrink - 1) * mu. |z| > 3.7 has probability 0.02 % (t with 259 df ~ normal); a real
    # bias of 5.2 SEs (0.07 here) is still caught 90 % of the time.
    shrink = PRIOR_SD**2 / (PRIOR_SD**2 + 1 / N_OBS)
    assert abs(row["bias"] - (shrink - 1) * 0.4) < 3.7 * row["bias_se"], row
    # n * MSE / E[MSE] ~ chi-square(n): 25 % off on the RMSE is < 1e-6 likely at n = 260.
    assert row["rmse"] == pytest.approx(math.sqrt(shrink / N_OBS), rel=0.25)
    # One compile, then the compiled model reused with each replicate's data.
    assert sum(r["compiled_here"] for r in result.records) <= 1
    record = result.records[0]
    assert set(record["diagnostics"]) == {"divergences", "max_r_hat", "min_ess_bulk"}
    assert {"data_seed", "sample_seed", "index"} <= set(record)
    assert [p.name for p in result.figures] == ["coverage.png", "ranks.png"]


POWER_GRID, POWER_REPLICATES = (0.0, 0.45, 1.0), 40


def power_regions() -> list[Region]:
    """Each point's count of intervals excluding 0, two-sided at 0.03 % (0.09 % for three)."""
    return [
        region(POWER_REPLICATES, normal_mean_interval_rate(mu, N_OBS, PRIOR_SD, INTERVAL)[1], 3e-4)
        for mu in POWER_GRID
    ]


def test_the_power_design_orders_its_points_and_catches_a_wrong_rate():
    regions = power_regions()
    assert sum(r.false_alarm() for r in regions) <= FALSE_ALARM
    # Disjoint regions: passing them proves the ordering of the three powers.
    assert regions[0].hi < regions[1].lo and regions[1].hi < regions[2].lo
    # Power from the wrong interval (50 %: rate 0.5 at mu = 0) fails > 99 % of the time.
    assert regions[0].fails_when(0.5) > 0.99


def test_power_increases_with_effect_size(normal_mean):
    result = mlm.Project(normal_mean).study(
        POWER_REPLICATES, grid={"mu": list(POWER_GRID)}, workers=0
    )
    for mu, expected in zip(POWER_GRID, power_regions(), strict=True):
        hits = round(result.row("mu", mu=mu)["power"] * POWER_REPLICATES)
        assert hits in expected, (mu, hits, str(expected))
    assert (normal_mean / "figures" / "study" / "power.png").is_file()


def test_rerun_computes_only_missing_replicates(normal_mean):
    project = mlm.Project(normal_mean)
    first = project.study(4, truth={"mu": 0.1}, workers=0, figures=False)
    assert first.computed == 4
    again = project.study(4, truth={"mu": 0.1}, workers=0, figures=False)
    assert again.computed == 0
    assert [r["parameters"] for r in again.records] == [r["parameters"] for r in first.records]
    more = project.study(6, truth={"mu": 0.1}, workers=0, figures=False)
    assert more.computed == 2
    assert [r["index"] for r in more.records if r.get("computed")] == [4, 5]
    # A comment in model.py changes nothing; other sampling settings are another study.
    model = normal_mean / "model.py"
    model.write_text(model.read_text() + "\n# a comment\n")
    assert project.study(6, truth={"mu": 0.1}, workers=0, figures=False).computed == 0
    assert project.study(2, truth={"mu": 0.1}, workers=0, figures=False, draws=200).computed == 2
    # Every cached file is plain JSON.
    for path in replicate_files(normal_mean):
        json.loads(path.read_text())


def test_local_dask_cluster_gives_the_in_process_results(normal_mean):
    project = mlm.Project(normal_mean)
    local = project.study(4, truth={"mu": 0.2}, workers=0, figures=False)
    shutil.rmtree(StorePaths(normal_mean).study_dir("model"))
    dask = project.study(4, truth={"mu": 0.2}, workers=2, figures=False)
    assert dask.computed == 4
    for a, b in zip(local.records, dask.records, strict=True):
        assert (a["index"], a["data_seed"], a["sample_seed"]) == (
            b["index"],
            b["data_seed"],
            b["sample_seed"],
        )
        assert a["parameters"]["mu"]["mean"] == pytest.approx(
            b["parameters"]["mu"]["mean"], abs=1e-12
        )
    # A mistake found on a worker comes back as the same clear error.
    with pytest.raises(MlmError, match="simulate\\(\\) has no parameter nu"):
        project.study(1, truth={"nu": 1.0}, workers=1, figures=False)


def test_bad_scheduler_address_gives_one_clear_error(normal_mean):
    done = run_mlm(
        "study",
        "-n",
        "2",
        "--truth",
        "mu=0.9",
        "--scheduler",
        "tcp://127.0.0.1:9",
        cwd=normal_mean,
        timeout=120,
    )
    assert done.returncode == 1
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(MlmError, match="simulate\\(\\) has no parameter nu"):
        mlm.Project(normal_mean).study(1, truth={"nu": 1.0}, workers=0)


def test_cli_study_prints_power_and_coverage(normal_mean):
    done = run_mlm(
        "study", "-n", "3", "--truth", "mu=1.5", "--workers", "0", cwd=normal_mean, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "coverage" in done.stdout and "power" in done.stdout
    assert "3 replicate(s) fitted, 0 from the cache" in done.stdout
    again = run_mlm("study", "-n", "3", "--truth", "mu=1.5", "-w", "0", cwd=normal_mean)
    assert "0 replicate(s) fitted, 3 from the cache" in again.stdout
    bad = run_mlm("study", "-n", "1", "--truth", "mu", cwd=normal_mean)
    assert bad.returncode == 1 and "expected NAME=VALUE" in bad.stderr


def test_a_study_shows_its_replicates_with_the_time_left_on_a_terminal_only(normal_mean):
    def args(truth: str) -> list[str]:
        return ["study", "-n", "6", "--truth", truth, "--workers", "0"]

    text = in_terminal([sys.executable, "-m", "mlm", *args("mu=1.7")], cwd=normal_mean)
    assert "study: 6 replicate(s)" in text and "left" in text
    assert drawn(text)
    piped = run_mlm(*args("mu=1.8"), cwd=normal_mean, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "6 replicate(s) fitted" in piped.stdout
    assert not drawn(piped.stdout + piped.stderr)
    assert "left" not in piped.stderr


SBC_REPLICATES = 320


def sbc_coverage_region() -> Region:
    return region(SBC_REPLICATES, 0.9, 1.6e-4, "lower")


def test_the_sbc_design_has_its_stated_false_alarm_rate_and_power():
    design = sbc_coverage_region()
    assert 5 * design.false_alarm() + 5 * 4e-5 <= FALSE_ALARM
    assert design.fails_when(0.80) >= 0.90


@pytest.mark.slow
def test_sbc_ranks_of_the_example_model_are_uniform(tmp_path):
    root = tmp_path / "example"
    shutil.copytree(
        REPO / "example_project",
        root,
        ignore=shutil.ignore_patterns(".mlm", "models", "figures", "report.html"),
    )
    # Truths drawn from the prior: every interval's coverage is exactly 0.90 and the ranks
    # are uniform. Ten checks share the 0.1 % budget: each quantity's coverage 1.6e-4 (too
    # few covering intervals fail; a true coverage of 0.80 fails 92 % of the time at 320
    # replicates), its ranks' chi-square 4e-5.
    n = SBC_REPLICATES
    result = mlm.Project(root).study(n, workers=0, draws=300, tune=300)
    assert len(result.records) == n
    p_values = result.rank_p_values()
    for name in ("b0", "b1", "sigma_u", "sigma_e[control]", "sigma_e[treated]"):
        assert p_values[name] > 4e-5, (name, p_values[name])
        row = result.row(name)
        hits = round(row["coverage"] * n)
        assert hits in sbc_coverage_region(), (name, hits, str(sbc_coverage_region()))
    assert rank_uniformity(list(range(100)), 99) > 0.99


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_study_on_a_dask_cluster_survives_a_killed_worker(normal_mean, tmp_path):
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    log = (tmp_path / "dask.log").open("w")
    processes = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                address.rsplit(":", 1)[1],
                "--no-dashboard",
            ],
            stdout=log,
            stderr=log,
        )
    ]
    try:
        time.sleep(3)
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"],
                    stdout=log,
                    stderr=log,
                )
            )
        victim = processes[1]
        killed = []

        def report(stage: str, message: str) -> None:
            if "done" in message and not killed:
                victim.send_signal(signal.SIGKILL)
                killed.append(message)

        project = mlm.Project(normal_mean, progress=report)
        result = project.study(10, truth={"mu": 0.6}, scheduler=address, figures=False)
        assert killed and victim.wait(10) == -signal.SIGKILL
        assert len(result.records) == 10
        assert sorted(r["index"] for r in result.records) == list(range(10))
        assert (
            mlm.Project(normal_mean).study(10, truth={"mu": 0.6}, workers=0, figures=False).computed
            == 0
        )
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait()
        log.close()
