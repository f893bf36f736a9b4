"""The make-style pipeline and its cache, on real fits of a small template project."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlm import Project

from conftest import cache_snapshot, run_mlm


def states(project: Project) -> dict[str, tuple[str, str]]:
    return {row.stage: (row.state, row.reason) for row in project.status()}


def ran(results) -> list[str]:
    return [r.stage for r in results if r.ran]


def trace_file(root: Path) -> Path:
    project = Project(root)
    key = project.fit_key()
    return project.store.trace_dir("model", key) / "trace.nc"


def test_full_run_leaves_every_stage_fresh(fitted_dir: Path):
    rows = Project(fitted_dir).status()
    assert [r.state for r in rows] == ["fresh"] * len(rows)
    assert {r.stage for r in rows} >= {"data", "model", "fit", "graphics:coefficients"}
    for name in ("coefficients", "school_effects", "posterior_predictive"):
        assert (fitted_dir / "figures" / f"{name}.png").stat().st_size > 1000


def test_comment_edit_of_model_keeps_trace_fresh(fitted_dir: Path):
    model = fitted_dir / "model.py"
    source = model.read_text()
    edited = "# a note to myself\n" + source.replace(
        "    return model", "\n\n    return model  # done"
    )
    model.write_text(edited)
    before = trace_file(fitted_dir).stat().st_mtime_ns
    project = Project(fitted_dir)
    assert states(project)["fit"][0] == "fresh"
    assert ran(project.run("fit")) == []
    assert trace_file(fitted_dir).stat().st_mtime_ns == before


def test_changed_csv_value_makes_fit_stale_and_status_says_why(fitted_dir: Path):
    csv = fitted_dir / "data" / "scores.csv"
    lines = csv.read_text().splitlines()
    fields = lines[5].split(",")
    fields[-1] = str(float(fields[-1]) + 1.0)
    lines[5] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")

    rows = states(Project(fitted_dir))
    assert rows["data"][0] == "stale" and "data changed" in rows["data"][1]
    assert rows["fit"] == ("stale", "data changed")
    assert rows["graphics:school_effects"][0] == "stale"

    shown = run_mlm("status", cwd=fitted_dir)
    assert shown.returncode == 0
    assert re.search(r"fit\s+.\s*stale\s+.\s*data changed", shown.stdout), shown.stdout
    assert run_mlm("status", "-q", cwd=fitted_dir).returncode == 1


def test_refactor_of_data_py_with_same_data_changes_nothing(fitted_dir: Path):
    data_py = fitted_dir / "data.py"
    data_py.write_text(
        data_py.read_text().replace(
            '    data = pd.read_csv(DATA_FILE, dtype={"school": "category"})\n    return data',
            '    return pd.read_csv(DATA_FILE, dtype={"school": "category"})',
        )
    )
    rows = states(Project(fitted_dir))
    assert rows["data"] == ("fresh", "data.py changed; same data")
    assert rows["fit"][0] == "fresh"


def test_editing_one_figure_function_redraws_only_that_figure(fitted_dir: Path):
    graphics = fitted_dir / "graphics.py"
    graphics.write_text(
        graphics.read_text().replace('ax.set_title("School effects', 'ax.set_title("Effects')
    )
    figures = fitted_dir / "figures"
    before = {p.name: p.stat().st_mtime_ns for p in figures.iterdir()}
    project = Project(fitted_dir)
    rows = states(project)
    assert rows["graphics:school_effects"] == ("stale", "school_effects() changed")
    assert rows["graphics:coefficients"][0] == "fresh"
    assert ran(project.run("graphics")) == ["graphics:school_effects"]
    after = {p.name: p.stat().st_mtime_ns for p in figures.iterdir()}
    assert after["school_effects.png"] != before["school_effects.png"]
    assert after["coefficients.png"] == before["coefficients.png"]
    assert after["posterior_predictive.png"] == before["posterior_predictive.png"]


def test_shared_graphics_code_change_redraws_every_figure(fitted_dir: Path):
    graphics = fitted_dir / "graphics.py"
    graphics.write_text(graphics.read_text().replace("prob=0.89", "prob=0.9"))
    project = Project(fitted_dir)
    assert len(ran(project.run("graphics"))) == 3
    assert states(project)["fit"][0] == "fresh"


def test_editing_a_helper_module_that_model_imports_makes_fit_stale(fitted_dir: Path):
    (fitted_dir / "priors.py").write_text("SLOPE_SD = 5\n")
    model = fitted_dir / "model.py"
    model.write_text(
        model.read_text()
        .replace("import pymc as pm\n", "import pymc as pm\n\nimport priors\n")
        .replace(
            'pm.Normal("slope", mu=0, sigma=5)', 'pm.Normal("slope", mu=0, sigma=priors.SLOPE_SD)'
        )
    )
    project = Project(fitted_dir)
    assert states(project)["fit"] == ("stale", "model.py changed, priors.py changed")
    project.run("fit")
    assert states(project)["fit"][0] == "fresh"

    (fitted_dir / "priors.py").write_text("SLOPE_SD = 3\n")
    assert states(Project(fitted_dir))["fit"] == ("stale", "priors.py changed")


def test_undoing_an_edit_brings_the_earlier_trace_back(fitted_dir: Path):
    fit = fitted_dir / "fit.py"
    original = fit.read_text()
    project = Project(fitted_dir)
    first_key = project.fit_key()
    fit.write_text(original.replace("draws=200", "draws=150"))
    assert ran(project.run("fit")) == ["fit"]
    assert project.idata["posterior"].sizes["draw"] == 150
    fit.write_text(original)
    assert states(project)["fit"][0] == "fresh"
    assert project.fit_key() == first_key
    assert ran(project.run()) == []  # the figures were drawn from this very trace
    assert project.idata["posterior"].sizes["draw"] == 200
    assert project.clean(keep=1) == 1
    assert project.store.trace_keys("model") == [first_key]


def test_graphics_on_a_fresh_trace_neither_imports_pymc_nor_compiles(fitted_dir: Path):
    for png in (fitted_dir / "figures").iterdir():
        png.unlink()
    code = (
        "import sys\n"
        "from mlm import Project\n"
        f"results = Project({str(fitted_dir)!r}).run('graphics')\n"
        "print(sorted(r.stage for r in results if r.ran))\n"
        "print('pymc' in sys.modules, 'pytensor' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == str(
        ["graphics:coefficients", "graphics:posterior_predictive", "graphics:school_effects"]
    )
    assert lines[-1] == "False False"


def test_force_resamples_a_fresh_fit(fitted_dir: Path):
    project = Project(fitted_dir)
    before = trace_file(fitted_dir).stat().st_mtime_ns
    assert ran(project.run("fit", force=True)) == ["fit"]
    assert trace_file(fitted_dir).stat().st_mtime_ns != before
    assert states(project)["fit"][0] == "fresh"


def test_dry_run_lists_stale_stages_and_runs_nothing(fitted_dir: Path):
    (fitted_dir / "fit.py").write_text((fitted_dir / "fit.py").read_text().replace("200", "201"))
    snapshot = cache_snapshot(fitted_dir)
    shown = run_mlm("run", "--dry", cwd=fitted_dir)
    assert shown.returncode == 0, shown.stderr
    assert "would run fit (fit.py changed)" in shown.stdout
    assert "would run graphics:coefficients" in shown.stdout
    assert cache_snapshot(fitted_dir) == snapshot


def test_seed_change_in_mlm_toml_makes_fit_stale(fitted_dir: Path):
    toml = fitted_dir / "mlm.toml"
    toml.write_text(toml.read_text().replace("seed = 20111130", "seed = 7"))
    assert states(Project(fitted_dir))["fit"] == ("stale", "seed changed")


@pytest.mark.slow
def test_fit_killed_mid_sampling_leaves_previous_trace_and_manifest_intact(fitted_dir: Path):
    project = Project(fitted_dir)
    key = project.fit_key()
    snapshot = cache_snapshot(fitted_dir)
    started = fitted_dir / "started"
    fit = fitted_dir / "fit.py"
    fit.write_text(
        fit.read_text()
        .replace(
            "    with model:\n", f"    open({str(started)!r}, 'w').close()\n    with model:\n", 1
        )
        .replace("draws=200, tune=200", "draws=200000, tune=1000")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlm", "run", "fit"],
        cwd=fitted_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert started.exists(), "the fit never started"
    time.sleep(8)  # compile and sample for a while
    assert proc.poll() is None, "the fit ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)

    after = cache_snapshot(fitted_dir)
    for name, stamp in snapshot.items():
        if name.startswith("fit/"):
            assert after.get(name) == stamp, f"{name} was touched"
    assert not [n for n in after if n.startswith("fit/") and n not in snapshot]
    assert project.store.latest_key("model") == key
    assert project.store.load_trace("model", key)["posterior"].sizes["draw"] == 200
    assert states(Project(fitted_dir))["fit"] == ("stale", "fit.py changed")
