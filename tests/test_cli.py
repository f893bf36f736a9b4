"""The command line: fast start, help, summary, clean and the -C option."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlm import Project

from conftest import cache_snapshot, run_mlm, status_rows

NO_HEAVY_IMPORTS = """
import sys
sys.argv = ["mlm", *{args!r}]
from mlm.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(
    m
    for m in ("pymc", "pytensor", "arviz", "numba", "nutpie", "dask", "distributed")
    if m in sys.modules
)
print("HEAVY", heavy)
"""


def imported_heavy(args: list[str], cwd: Path) -> str:
    code = NO_HEAVY_IMPORTS.format(args=args)
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def test_help_and_status_do_not_import_pymc(fitted_dir: Path):
    assert imported_heavy(["--help"], fitted_dir) == "HEAVY []"
    assert imported_heavy(["status"], fitted_dir) == "HEAVY []"


def test_help_lists_the_commands(tmp_path: Path):
    done = run_mlm("--help", cwd=tmp_path)
    assert done.returncode == 0
    for command in ("new", "run", "status", "summary", "clean", "--project"):
        assert command in done.stdout


def test_dash_c_acts_on_another_folder_and_walks_up_from_subfolders(fitted_dir: Path, tmp_path):
    expected = {r.stage: r.state for r in Project(fitted_dir).status()}
    assert set(expected.values()) == {"fresh"} and len(expected) == 6
    for done in (
        run_mlm("-C", str(fitted_dir), "status", cwd=tmp_path),
        run_mlm("status", cwd=fitted_dir / "data"),
    ):
        assert done.returncode == 0, done.stderr
        assert status_rows(done.stdout) == expected
    # Outside any project: refused, naming where it looked.
    outside = run_mlm("status", cwd=tmp_path)
    assert outside.returncode == 1 and "mlm.toml" in outside.stderr


def test_summary_shows_the_posterior_and_diagnostics(fitted_dir: Path):
    done = run_mlm("summary", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "r_hat" in done.stdout and "2 chains x 200 draws" in done.stdout
    table, _, _ = Project(fitted_dir).summary()
    # One parameter per line (with or without rich's column rules).
    lines = [line.replace("│", " ").split() for line in done.stdout.splitlines() if line.strip()]
    rows = {cells[0]: cells[1:] for cells in lines if cells[0] in table.index}
    # The model's parameters, each with its mean and r_hat as ArviZ gives them.
    assert {"intercept", "slope", "sigma_school", "sigma", "school_effect[school_8]"} <= set(rows)
    for name in ("slope", "sigma_school", "school_effect[school_1]"):
        mean, r_hat = float(rows[name][0]), float(rows[name][-1])
        assert mean == pytest.approx(table.loc[name, "mean"], rel=0.01, abs=1e-3), name
        assert r_hat == pytest.approx(table.loc[name, "r_hat"], abs=1e-3), name


def test_summary_warns_when_the_trace_is_stale(fitted_dir: Path):
    fit = fitted_dir / "fit.py"
    fit.write_text(fit.read_text().replace("draws=200", "draws=300"))
    done = run_mlm("summary", cwd=fitted_dir)
    assert done.returncode == 0
    assert "the trace is stale" in done.stderr


def test_clean_drops_the_cache(fitted_dir: Path):
    done = run_mlm("clean", "--yes", cwd=fitted_dir)
    assert done.returncode == 0
    assert not (fitted_dir / ".mlm").exists()
    assert Project(fitted_dir).status()[2].state == "missing"


def test_run_of_a_fresh_project_says_nothing_to_do(fitted_dir: Path):
    # The copy has new inodes and ctimes: once they are settled (2 s, racy-git style), the
    # first run notes the data files' new stamps (same hashes), and then nothing moves.
    time.sleep(2.1)
    Project(fitted_dir).run()
    before = cache_snapshot(fitted_dir)
    figures = {p.name: p.stat().st_mtime_ns for p in (fitted_dir / "figures").iterdir()}
    done = run_mlm("run", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stdout
    assert "sampling" not in done.stderr and "drew" not in done.stderr
    # Nothing was written: not the cache, not a figure.
    assert cache_snapshot(fitted_dir) == before
    assert {p.name: p.stat().st_mtime_ns for p in (fitted_dir / "figures").iterdir()} == figures


def test_run_simulate_is_the_simulation_study_command(tmp_path: Path):
    from mlm.cli import _with_simulate_alias

    assert _with_simulate_alias(["run", "simulate", "-n", "5"]) == ["study", "-n", "5"]
    assert _with_simulate_alias(["-C", "run", "status"]) == ["-C", "run", "status"]
    assert _with_simulate_alias(["-C", "x", "run", "simulate"]) == ["-C", "x", "study"]
    assert _with_simulate_alias(["run", "fit"]) == ["run", "fit"]
    done = run_mlm("run", "simulate", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "--replicates" in done.stdout and "--scheduler" in done.stdout


def test_run_says_when_a_fit_it_just_made_fails_the_gate(project_dir: Path):
    """mlm run exits 0 (the trace is cached and usable) but does not hide failed checks."""
    fit = project_dir / "fit.py"
    text = fit.read_text()
    assert "draws=200, tune=200" in text  # conftest's FAST_FIT
    fit.write_text(text.replace("draws=200, tune=200", "draws=30, tune=30"))
    done = run_mlm("run", "fit", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    assert "note: " in done.stderr and "fail mlm check's thresholds" in done.stderr
    assert "ess_bulk" in done.stderr
    # nothing ran the second time: no note about a trace that was not just made
    again = run_mlm("run", "fit", cwd=project_dir)
    assert again.returncode == 0 and "note: " not in again.stderr


WARNING_DATA = '''"""Data, and two warnings as libraries give them while mlm runs."""

import warnings

import pandas as pd


def load():
    warnings.warn("PyTensor could not link to a BLAS installation. Operations ...", UserWarning)
    warnings.warn("a warning of the user's own", UserWarning)
    return pd.DataFrame({"y": [1.0, 2.0]})
'''


def test_pytensors_blas_warning_is_not_shown_and_other_warnings_are(project_dir: Path):
    # PyMC 6 compiles with numba: PyTensor's C backend's missing BLAS slows nothing mlm runs,
    # and its six-line warning alarmed a new user on every fit.
    (project_dir / "data.py").write_text(WARNING_DATA)
    done = run_mlm("run", "data", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    assert "a warning of the user's own" in done.stderr
    assert "BLAS" not in done.stderr
