"""`mlm console`: the REPL with project, data, model and idata ready, nothing sampled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlm import Project

from conftest import cache_snapshot


def console(root: Path, lines: list[str], *options: str) -> subprocess.CompletedProcess:
    """`mlm console` with `lines` typed into it (stdin), as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mlm", "console", *options],
        input="\n".join(lines) + "\n",
        cwd=root,
        env={**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_console_has_the_project_ready_and_samples_nothing(fitted_dir: Path):
    before = cache_snapshot(fitted_dir)
    key = Project(fitted_dir).fit_key()
    done = console(
        fitted_dir,
        [
            "print('PROJECT', project.name, project.root.name)",
            "print('KEY', project.fit_key())",
            "print('ROWS', len(data))",
            "print('FREE', sorted(v.name for v in model.free_RVs))",
            "print('SLOPE', float(idata['posterior']['slope'].mean()))",
            "print('DRAWS', idata['posterior'].sizes['draw'])",
            "print('NP', np.__name__, pd.__name__)",
        ],
        "--plain",
    )
    assert done.returncode == 0, done.stderr
    out = dict(
        line.removeprefix(">>> ").split(" ", 1)
        for line in done.stdout.splitlines()
        if line.removeprefix(">>> ").split(" ", 1)[0].isupper()
    )
    assert out["PROJECT"] == "demo demo"
    assert out["KEY"] == key
    assert out["ROWS"] == "120"
    assert out["FREE"] == "['intercept', 'sigma', 'sigma_school', 'slope', 'z_school']"
    assert out["DRAWS"] == "200"
    assert out["NP"] == "numpy pandas"
    cached = Project(fitted_dir).store.load_trace("model", key)
    assert float(out["SLOPE"]) == pytest.approx(float(cached["posterior"]["slope"].mean()))
    assert "mlm console: demo" in done.stderr or "mlm console: demo" in done.stdout
    assert "sampling" not in done.stderr
    after = cache_snapshot(fitted_dir)
    traces = {k: v for k, v in before.items() if k.startswith("fit/")}
    assert {k: v for k, v in after.items() if k.startswith("fit/")} == traces  # none written


def test_names_are_loaded_only_when_used(fitted_dir: Path):
    done = console(fitted_dir, ["print('READY', sorted(project.variants()))"], "--plain")
    assert done.returncode == 0, done.stderr
    assert "READY ['model']" in done.stdout
    assert "loading" not in done.stderr and "building" not in done.stderr


def test_a_stale_trace_is_shown_with_a_warning_not_resampled(fitted_dir: Path):
    fit = fitted_dir / "fit.py"
    fit.write_text(fit.read_text().replace("draws=200", "draws=250"))
    done = console(fitted_dir, ["print('DRAWS', idata['posterior'].sizes['draw'])"], "--plain")
    assert done.returncode == 0, done.stderr
    assert "DRAWS 200" in done.stdout
    assert "is stale" in done.stderr and "project.run('fit')" in done.stderr
    assert "sampling" not in done.stderr


def test_without_a_trace_idata_says_how_to_sample_one(project_dir: Path):
    done = console(project_dir, ["idata", "1 / 0", "print('STILL HERE')"], "--plain")
    assert done.returncode == 0
    # mlm's own error as its message, as the command line shows it; others as Python does.
    assert "error: no trace of model.py in the cache yet" in done.stderr
    assert done.stderr.count("Traceback") == 1 and "ZeroDivisionError" in done.stderr
    assert "STILL HERE" in done.stdout
    assert "sampling" not in done.stderr
    assert not (project_dir / ".mlm" / "fit").exists()


def test_ipython_shows_mlms_errors_as_their_message(project_dir: Path):
    pytest.importorskip("IPython")
    done = console(project_dir, ["idata", "print('STILL HERE')", "exit()"])
    assert done.returncode == 0, done.stderr
    assert "error: no trace of model.py in the cache yet" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "MlmError" not in done.stdout
    assert "STILL HERE" in done.stdout


def test_console_uses_ipython_when_it_is_installed(fitted_dir: Path):
    pytest.importorskip("IPython")
    done = console(fitted_dir, ["print('ROWS', len(data))", "exit()"])
    assert done.returncode == 0, done.stderr
    assert "IPython" in done.stdout and "ROWS 120" in done.stdout
