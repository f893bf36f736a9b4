"""mlm predict: predictions and comparisons from the cached trace, through the real CLI.

Every test works on a private copy of conftest's fitted template project (a varying-
intercept model of score on hours by school), so the trace is fresh and nothing should
ever be sampled unless a test makes the trace stale on purpose.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import cache_snapshot, run_mlm, table_rows

NEW_ROWS = "school,hours\nschool_1,5\nschool_2,2.5\na_new_school,5\n"


def fit_files(root: Path) -> dict:
    """The trace store's files (a resample would change them)."""
    return {k: v for k, v in cache_snapshot(root).items() if k.startswith("fit/")}


def slope_draws(root: Path) -> np.ndarray:
    from mlm import Project

    project = Project(root)
    key = project.fit_key()
    return project.store.load_trace("model", key)["posterior"]["slope"].to_numpy().ravel()


def ok(result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def new_csv(fitted_dir: Path) -> Path:
    path = fitted_dir / "new.csv"
    path.write_text(NEW_ROWS)
    return path


def test_predict_writes_a_tidy_table_and_the_draws_without_sampling(fitted_dir, new_csv):
    before = fit_files(fitted_dir)
    result = run_mlm("predict", "new.csv", "--out", "out/predictions.csv", cwd=fitted_dir)
    ok(result)
    assert "sampling" not in result.stderr
    assert fit_files(fitted_dir) == before  # the trace was only read
    table = pd.read_csv(fitted_dir / "out" / "predictions.csv")
    assert list(table.columns) == ["row", "school", "hours", "mean", "sd", "q2.5", "q97.5"]
    assert table["school"].tolist() == ["school_1", "school_2", "a_new_school"]
    assert (table["q2.5"] < table["mean"]).all() and (table["mean"] < table["q97.5"]).all()
    draws = xr.load_dataarray(fitted_dir / "out" / "predictions.nc")
    assert draws.dims == ("chain", "draw", "row")
    assert draws.sizes["draw"] == 200 and draws.sizes["row"] == 3
    assert list(draws.coords["school"].values) == ["school_1", "school_2", "a_new_school"]
    np.testing.assert_allclose(draws.mean(("chain", "draw")), table["mean"], rtol=1e-9)
    # The printed table holds the same numbers; the cached draws sit under .mlm/predict/.
    assert "a_new_school" in result.stdout and "q97.5" in result.stdout
    # an int column stays int in the printed table (0, not 0.0, beside the float columns)
    printed = [cells[0] for cells in table_rows(result.stdout.split("\n", 1)[1])]
    assert printed[:3] == ["0", "1", "2"], result.stdout
    assert list((fitted_dir / ".mlm" / "predict" / "model").glob("*/draws.nc"))


def test_parquet_out_and_kind_mean(fitted_dir, new_csv):
    ok(run_mlm("predict", "new.csv", "--kind", "mean", "-o", "p.parquet", cwd=fitted_dir))
    mean = pd.read_parquet(fitted_dir / "p.parquet")
    response = run_mlm("predict", "new.csv", "-o", "r.csv", cwd=fitted_dir)
    ok(response)
    response = pd.read_csv(fitted_dir / "r.csv")
    # New observations add the residual SD to the expected value's uncertainty.
    assert (response["sd"] > mean["sd"]).all()
    # A new school is less certain than a fitted one.
    assert mean["sd"].iloc[2] > 2 * mean["sd"].iloc[0]


def test_second_identical_call_reads_the_cache(fitted_dir, new_csv):
    first = run_mlm("predict", "new.csv", cwd=fitted_dir)
    ok(first)
    drawn = cache_snapshot(fitted_dir)
    second = run_mlm("predict", "new.csv", cwd=fitted_dir)
    ok(second)
    assert "read from the cache" in second.stderr
    assert "loading cached trace" not in second.stderr  # the trace is not even read
    assert cache_snapshot(fitted_dir) == drawn
    assert second.stdout == first.stdout
    # Another kind, seed or new-level rule is another entry.
    ok(run_mlm("predict", "new.csv", "--seed", "5", cwd=fitted_dir))
    assert len(list((fitted_dir / ".mlm" / "predict" / "model").iterdir())) == 2


def test_cache_hit_builds_and_compiles_nothing(fitted_dir, monkeypatch):
    from mlm import Project
    from mlm.predict import cache
    from mlm.stages.fit import FitStage

    project = Project(fitted_dir)
    newdata = pd.DataFrame({"school": ["school_3", "elsewhere"], "hours": [1.0, 8.0]})
    first = project.predict(newdata, kind="mean")
    assert first.dims == ("chain", "draw", "row")

    def refuse(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(cache, "_builder", refuse)
    monkeypatch.setattr(cache, "_draw", refuse)
    monkeypatch.setattr(FitStage, "value", refuse)
    again = Project(fitted_dir).predict(newdata.copy(), kind="mean")
    xr.testing.assert_identical(first, again)
    # The key holds the new rows' content: one changed value misses the cache.
    changed = newdata.assign(hours=[1.0, 8.5])
    with pytest.raises(AssertionError, match="cache was not used"):
        Project(fitted_dir).predict(changed, kind="mean")


def test_compare_is_the_slope_for_the_linear_model(fitted_dir):
    result = run_mlm("predict", "--compare", "hours=0,1", "--out", "cmp.csv", cwd=fitted_dir)
    ok(result)
    table = pd.read_csv(fitted_dir / "cmp.csv")
    slope = slope_draws(fitted_dir)
    assert len(table) == 1
    assert table["contrast"].iloc[0] == "hours: 1.0 - 0.0"
    np.testing.assert_allclose(table["mean"].iloc[0], slope.mean(), rtol=1e-9)
    np.testing.assert_allclose(table["sd"].iloc[0], slope.std(ddof=1), rtol=1e-9)
    np.testing.assert_allclose(
        table[["q2.5", "q97.5"]].iloc[0], np.quantile(slope, [0.025, 0.975]), rtol=1e-9
    )
    assert "average difference" in result.stdout
    by = run_mlm(
        "predict", "--compare", "hours=0,1", "--by", "school", "-o", "by.csv", cwd=fitted_dir
    )
    ok(by)
    by = pd.read_csv(fitted_dir / "by.csv")
    assert by["school"].tolist() == [f"school_{i}" for i in range(1, 9)]
    np.testing.assert_allclose(by["mean"], slope.mean(), rtol=1e-9)


def test_compare_over_new_rows_and_python_form(fitted_dir, new_csv):
    from mlm import Project

    result = run_mlm("predict", "new.csv", "--compare", "hours=2,4", "-o", "c.csv", cwd=fitted_dir)
    ok(result)
    slope = slope_draws(fitted_dir)
    np.testing.assert_allclose(pd.read_csv(fitted_dir / "c.csv")["mean"], 2 * slope.mean())
    draws = Project(fitted_dir).compare_predictions("hours", (0, 1))
    assert draws.dims == ("chain", "draw")
    np.testing.assert_allclose(draws.to_numpy().ravel(), slope, rtol=1e-9)


FIGURE = '''

def predicted_scores(predict):
    """Expected score over study hours, in a fitted school and in a new one."""
    import pandas as pd

    hours = np.linspace(0, 10, 6)
    rows = pd.DataFrame({"school": ["school_1"] * 6 + ["new"] * 6, "hours": [*hours, *hours]})
    mean = predict(rows, kind="mean").mean(("chain", "draw"))
    per_hour = float(predict.compare("hours", (0, 1)).mean())
    fig, ax = plt.subplots()
    ax.set_title(f"{per_hour:.3f} points per hour")
    ax.plot(hours, mean[:6], label="school_1")
    ax.plot(hours, mean[6:], label="a new school")
    ax.legend()
    return fig
'''


def test_a_figure_asks_for_predict(fitted_dir):
    graphics = fitted_dir / "graphics.py"
    graphics.write_text(graphics.read_text() + FIGURE)
    before = fit_files(fitted_dir)
    first = run_mlm("run", cwd=fitted_dir)
    ok(first)
    assert "drew figures/predicted_scores.png" in first.stderr
    assert "sampling" not in first.stderr and fit_files(fitted_dir) == before
    assert (fitted_dir / "figures" / "predicted_scores.png").is_file()
    assert len(list((fitted_dir / ".mlm" / "predict" / "model").glob("*/draws.nc"))) == 2
    # Its key holds the trace's inputs: a new seed (a new trace) redraws it.
    record = json.loads(
        (fitted_dir / ".mlm" / "graphics" / "model" / "predicted_scores.json").read_text()
    )
    assert "seed" in record["inputs"] and "model.py" in record["inputs"]
    second = run_mlm("run", cwd=fitted_dir)
    ok(second)
    assert "nothing to do" in second.stdout
    # A forced redraw reads its predictions from the cache: the trace is not even loaded.
    forced = run_mlm("run", "graphics:predicted_scores", "--force", cwd=fitted_dir)
    ok(forced)
    assert "drew figures/predicted_scores.png" in forced.stderr
    assert "loading cached trace" not in forced.stderr


def test_stale_trace_is_fitted_first_saying_so(fitted_dir, new_csv):
    toml = fitted_dir / "mlm.toml"
    toml.write_text(re.sub(r"(?m)^seed = .*$", "seed = 17", toml.read_text()))
    result = run_mlm("predict", "new.csv", cwd=fitted_dir)
    ok(result)
    assert "fit sampling (seed changed" in " ".join(result.stderr.split())
    again = run_mlm("predict", "new.csv", cwd=fitted_dir)
    ok(again)
    assert "sampling" not in again.stderr and "read from the cache" in again.stderr


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (
            "school\nschool_1\n",
            ("new.csv",),
            "new.csv lacks column(s) the model uses as predictors: hours",
        ),
        (
            "school,hours\nschool_1,lots\n",
            ("new.csv",),
            "new.csv: column 'hours' holds text ('lots' in row 0)",
        ),
        ("school,hours\n", ("new.csv",), "new.csv has no rows to predict"),
        (NEW_ROWS, ("missing.csv",), "missing.csv: no such file"),
        (NEW_ROWS, ("new.xlsx",), "new.xlsx: cannot tell how to read it"),
        (NEW_ROWS, ("new.csv", "--model", "nope"), "no model variant named nope"),
        (NEW_ROWS, ("new.csv", "--kind", "median"), "kind must be one of response, mean"),
        (NEW_ROWS, ("new.csv", "--new-levels", "zero"), "new_levels must be one of gaussian"),
        (NEW_ROWS, ("new.csv", "--compare", "dose=0,1"), "new.csv has no column 'dose'"),
        (NEW_ROWS, ("--compare", "hours"), "give a predictor and two of its values"),
        (NEW_ROWS, ("--compare", "hours=a,b"), "'hours' holds numbers, and 'a' is not one"),
        (NEW_ROWS, ("--compare", "hours=0,1", "--by", "town"), "cannot compare by 'town'"),
        (NEW_ROWS, (), "mlm predict needs a file of new rows"),
        (NEW_ROWS, ("new.csv", "-o", "p.xlsx"), "p.xlsx: give --out a .csv, .tsv or .parquet"),
    ],
)
def test_bad_input_gets_one_clear_message(fitted_dir, content, args, message):
    (fitted_dir / "new.csv").write_text(content)
    (fitted_dir / "new.xlsx").write_text(content)
    result = run_mlm("predict", *args, cwd=fitted_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stderr.split())
    assert message in text
    assert "Traceback" not in result.stderr and text.count("error:") == 1


def test_the_printed_table_keeps_int_columns_int():
    """An all-number row (subject ids as numbers) must not print 0 as 0.0."""
    from mlm.cli import _table_cells

    table = pd.DataFrame(
        {"row": [0, 1], "Subject": [3, 12], "age": [0.5, -1.0], "mean": [1.23456, 2.0]}
    )
    cells = _table_cells(table, {"mean"})
    assert cells == [["0", "3", "0.5", "1.235"], ["1", "12", "-1.0", "2.000"]]
