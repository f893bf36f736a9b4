"""Ordinary faults and slips get one clear message, never "mlm internal error": a full disk
while a trace or a figure is written, bad or misspelt mlm.toml settings, text in a column
of numbers, a comparison of one model, `mlm clean` without asking, relative paths in
data.py, and the trace folders' permissions. docs/reliability.md lists each case."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mlm import MlmError, Project
from mlm.store import Record, Store

from conftest import cache_snapshot, run_mlm


def _trace(value: float = 0.0) -> xr.DataTree:
    posterior = xr.Dataset({"mu": (("chain", "draw"), np.full((2, 5), value))})
    return xr.DataTree.from_dict({"posterior": posterior})


def _save(store: Store, key: str, variant: str = "model") -> Path:
    return store.save_trace(variant, Record(key, {"seed": 1}), _trace())


def mlm_without_terminal(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real `mlm`, its stdin not a terminal (as in a script or CI)."""
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mlm", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


# 9. a full disk is an ordinary fault -----------------------------------------------------
H5PY_DISK_FULL = (
    "Can't decrement id ref count (unable to close file, errno = 28, error message = "
    "'No space left on device')"
)


def h5py_fails_on_close(self, path, *args, **kwargs):
    Path(path).write_bytes(b"half a file")
    raise RuntimeError(H5PY_DISK_FULL)


def test_h5py_failing_to_close_a_trace_names_the_folder_and_keeps_the_rest(
    tmp_path: Path, monkeypatch
):
    store = Store(tmp_path)
    _save(store, "earlier")
    monkeypatch.setattr(xr.DataTree, "to_netcdf", h5py_fails_on_close)
    with pytest.raises(MlmError) as caught:
        _save(store, "new")
    message = str(caught.value)
    assert f"could not write the trace to {store.paths.fit_dir('model')}" in message
    assert "RuntimeError: Can't decrement id ref count" in message
    assert "earlier traces are intact" in message
    assert store.trace_keys("model") == ["earlier"]
    assert not list(store.paths.fit_dir("model").glob(".tmp-*"))
    monkeypatch.undo()
    store.load_trace("model", "earlier")  # whole, checksum and all


def test_h5py_failing_during_a_fit_is_one_message_and_the_old_trace_stays(
    fitted_dir: Path, monkeypatch
):
    before = cache_snapshot(fitted_dir)
    fit = fitted_dir / "fit.py"
    fit.write_text(fit.read_text().replace("draws=200", "draws=210"))
    monkeypatch.setattr(xr.DataTree, "to_netcdf", h5py_fails_on_close)
    with pytest.raises(MlmError, match=r"could not write the trace .*earlier traces are intact"):
        Project(fitted_dir).run("fit")
    after = cache_snapshot(fitted_dir)
    assert {k: v for k, v in after.items() if k.startswith("fit/")} == {
        k: v for k, v in before.items() if k.startswith("fit/")
    }
    assert not list((fitted_dir / ".mlm" / "fit" / "model").glob(".tmp-*"))


def test_a_full_disk_while_writing_a_figure_names_it_and_draws_the_others(
    fitted_dir: Path, monkeypatch
):
    from matplotlib.figure import Figure

    for png in (fitted_dir / "figures").iterdir():
        png.unlink()
    savefig = Figure.savefig

    def disk_full_for_one(self, fname, *args, **kwargs):
        if Path(fname).name.startswith(".coefficients."):
            raise OSError(errno.ENOSPC, "No space left on device", str(fname))
        return savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", disk_full_for_one)
    with pytest.raises(MlmError) as caught:
        Project(fitted_dir).run("graphics")
    message = str(caught.value)
    assert f"could not write {fitted_dir / 'figures' / 'coefficients.png'}" in message
    assert "No space left on device" in message
    drawn = sorted(p.name for p in (fitted_dir / "figures").iterdir())
    assert drawn == ["posterior_predictive.png", "school_effects.png"]  # no temporaries


# 14. mlm.toml: bad values named at load, unknown keys warned about --------------------
@pytest.mark.parametrize(
    "old, new, message",
    [
        ("dpi = 150", "dpi = 0", "[graphics] dpi must be more than 0, got 0"),
        ("dpi = 150", "dpi = -72", "[graphics] dpi must be more than 0, got -72"),
        ("seed = 20111130", "seed = -1", "[project] seed must be 0 or more, got -1"),
    ],
    ids=["dpi 0", "dpi negative", "seed negative"],
)
def test_a_bad_value_in_mlm_toml_is_named_at_load(project_dir: Path, old, new, message):
    toml = project_dir / "mlm.toml"
    assert old in toml.read_text()
    toml.write_text(toml.read_text().replace(old, new))
    done = run_mlm("status", cwd=project_dir)
    assert done.returncode == 1, done.stderr
    assert f"{toml}: {message}" in one_line(done.stderr)
    assert "internal error" not in done.stderr


def test_unknown_sections_and_keys_in_mlm_toml_are_warned_about_once(project_dir: Path):
    toml = project_dir / "mlm.toml"
    text = toml.read_text().replace("dpi = 150", "dip = 300")
    toml.write_text(text + '\n[grahpics]\nformat = "svg"\n\n[check]\nrhat = 1.05\n')
    done = run_mlm("status", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    stderr = one_line(done.stderr)
    for warning in (
        f"{toml}: unknown section [grahpics] is ignored; did you mean 'graphics'?",
        f"{toml}: unknown key 'dip' in [graphics] is ignored; did you mean 'dpi'?",
        f"{toml}: unknown key 'rhat' in [check] is ignored; did you mean 'r_hat'?",
    ):
        assert stderr.count(warning) == 1, done.stderr


def test_reading_mlm_toml_prints_nothing_and_keeps_the_warnings(project_dir: Path, capsys):
    toml = project_dir / "mlm.toml"
    toml.write_text(toml.read_text() + "\n[totally_new]\nx = 1\n")
    project = Project(project_dir)
    assert capsys.readouterr() == ("", "")
    assert len(project.config.warnings) == 1
    assert "unknown section [totally_new] is ignored; known: project" in project.config.warnings[0]


def test_the_known_mlm_toml_keys_are_the_ones_mlm_reads():
    from mlm.check import DEFAULT_THRESHOLDS
    from mlm.config import KNOWN_KEYS
    from mlm.study.design import DEFAULTS

    assert KNOWN_KEYS["check"] == tuple(DEFAULT_THRESHOLDS)
    assert KNOWN_KEYS["study"] == tuple(DEFAULTS)


# 10. text in a column of numbers ------------------------------------------------------
def _with_text_in_hours(project_dir: Path) -> pd.DataFrame:
    csv = project_dir / "data" / "scores.csv"
    frame = pd.read_csv(csv)
    frame["hours"] = frame["hours"].astype(object)
    frame.loc[7, "hours"] = "unknown"
    frame.loc[9, "hours"] = "?"
    frame.to_csv(csv, index=False)
    return pd.read_csv(csv)


def test_text_in_a_column_of_numbers_is_named_with_its_rows(project_dir: Path):
    from mlm.stages.validate import text_in_numbers

    data = _with_text_in_hours(project_dir)
    assert text_in_numbers(data) == "hours at rows [7, 9]: 'unknown', '?'"
    assert text_in_numbers(pd.read_csv(project_dir / "data" / "scores.csv", nrows=5)) == ""
    mixed = pd.DataFrame({"a": np.array([1, "2", 3.5, "x"], dtype=object), "b": list("pqrs")})
    assert text_in_numbers(mixed) == "a at rows [3]: 'x'"  # b is text, not numbers
    assert text_in_numbers([1, 2]) == ""


def test_text_in_a_column_of_numbers_is_one_message_from_mlm_run(project_dir: Path):
    _with_text_in_hours(project_dir)
    done = run_mlm("run", "model", cwd=project_dir)
    assert done.returncode == 1
    assert "hours at rows [7, 9]: 'unknown', '?'" in one_line(done.stderr), done.stderr


# 11. a comparison of one model ----------------------------------------------------------
def test_compare_with_one_model_refuses_at_once_and_samples_nothing(project_dir: Path):
    done = run_mlm("run", "compare", cwd=project_dir)
    assert done.returncode == 1
    assert "mlm run compare needs two or more model variants" in one_line(done.stderr)
    assert "sampling" not in done.stderr
    fits = project_dir / ".mlm" / "fit"
    assert not fits.exists() or not list(fits.rglob("trace.nc"))


# 12. mlm clean asks first ---------------------------------------------------------------
def _cache_with_leftovers(root: Path) -> Store:
    """Three traces of "model", a quarantined and a half-written folder; no sampling."""
    store = Store(root)
    for i, key in enumerate(["k1", "k2", "k3"]):
        os.utime(_save(store, key), (1_000_000 + i, 1_000_000 + i))
    fits = store.paths.fit_dir("model")
    (fits / ".corrupt-k0-1700000000").mkdir()
    (fits / ".tmp-k4-abc").mkdir()
    (fits / ".tmp-k4-abc" / "trace.nc").write_bytes(b"partial")
    return store


def test_clean_without_a_terminal_or_yes_refuses_and_removes_nothing(project_dir: Path):
    _cache_with_leftovers(project_dir)
    before = cache_snapshot(project_dir)
    for args in (["clean"], ["clean", "--keep", "1"]):
        done = mlm_without_terminal(*args, cwd=project_dir)
        assert done.returncode == 1, done.stderr
        assert "pass --yes" in one_line(done.stderr)
        assert "3 trace(s)" in done.stderr if args == ["clean"] else "2 trace(s)" in done.stderr
        assert cache_snapshot(project_dir) == before


def test_clean_dry_lists_what_would_go_and_removes_nothing(project_dir: Path):
    _cache_with_leftovers(project_dir)
    before = cache_snapshot(project_dir)
    done = mlm_without_terminal("clean", "--dry", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    assert (
        "would remove the whole cache .mlm/ (3 trace(s) and 2 quarantined or half-written "
        "folder(s))" in one_line(done.stdout)
    )
    for name in ("k1", "k2", "k3", ".corrupt-k0-1700000000", ".tmp-k4-abc"):
        assert f".mlm/fit/model/{name}" in done.stdout
    done = mlm_without_terminal("clean", "--keep", "2", "--dry", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    assert "would remove 1 trace(s) and 2 quarantined" in one_line(done.stdout)
    assert ".mlm/fit/model/k1" in done.stdout and "model/k3" not in done.stdout
    assert cache_snapshot(project_dir) == before


def test_clean_keep_with_yes_removes_old_quarantined_and_half_written_traces(
    project_dir: Path,
):
    store = _cache_with_leftovers(project_dir)
    done = mlm_without_terminal("clean", "--keep", "2", "-y", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    assert "1 trace(s) deleted" in done.stdout
    assert store.trace_keys("model") == ["k3", "k2"]
    assert sorted(p.name for p in store.paths.fit_dir("model").iterdir()) == [
        "k2",
        "k3",
        "latest.json",
    ]
    done = mlm_without_terminal("clean", "--yes", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    assert not (project_dir / ".mlm").exists()
    done = mlm_without_terminal("clean", cwd=project_dir)  # nothing left: nothing to ask
    assert done.returncode == 0 and "nothing to clean" in done.stdout


def test_clean_on_a_terminal_asks_and_shows_how_much_would_go(project_dir: Path, monkeypatch):
    from typer.testing import CliRunner

    import mlm.cli

    _cache_with_leftovers(project_dir)
    monkeypatch.setattr(mlm.cli, "_interactive", lambda: True)
    runner = CliRunner()
    args = ["-C", str(project_dir), "clean"]
    declined = runner.invoke(mlm.cli.app, args, input="n\n")
    assert declined.exit_code == 1
    assert (
        "remove the whole cache .mlm/ (3 trace(s) and 2 quarantined or half-written "
        "folder(s))? [y/N]" in one_line(declined.output)
    )
    assert (project_dir / ".mlm" / "fit" / "model" / "k1").is_dir()
    accepted = runner.invoke(mlm.cli.app, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert not (project_dir / ".mlm").exists()


# 13. slot code runs from the project root ----------------------------------------------
def test_relative_paths_in_data_py_work_from_anywhere(project_dir: Path, tmp_path: Path):
    data_py = project_dir / "data.py"
    source = data_py.read_text()
    relative = source.replace(
        'DATA_FILE = Path(__file__).parent / "data" / "scores.csv"',
        'DATA_FILE = Path("data") / "scores.csv"',
    )
    assert relative != source
    data_py.write_text(relative)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_mlm("-C", str(project_dir), "run", "data", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    (project_dir / "data" / "scores.csv").write_text(
        (project_dir / "data" / "scores.csv").read_text() + "121,school_1,1.0,50.0\n"
    )
    done = run_mlm("run", "data", cwd=project_dir / "data")  # from a subfolder
    assert done.returncode == 0, done.stderr
    assert "121 rows" in done.stderr


def test_slot_code_sees_the_root_as_its_folder_and_the_folder_is_put_back(
    project_dir: Path, tmp_path: Path, monkeypatch
):
    from mlm.slots import SlotLoader

    monkeypatch.chdir(tmp_path)
    loader = SlotLoader(project_dir)
    seen = []

    def ok():
        seen.append(Path.cwd())

    def fails():
        seen.append(Path.cwd())
        raise ValueError("boom")

    loader.call("data", ok, {})
    with pytest.raises(MlmError, match="boom"):
        loader.call("data", fails, {})
    assert seen == [project_dir, project_dir]
    assert Path.cwd() == tmp_path


# 15. trace folders follow the umask ----------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750), (0o077, 0o700)])
def test_trace_folders_follow_the_umask(tmp_path: Path, umask: int, mode: int):
    previous = os.umask(umask)
    try:
        folder = _save(Store(tmp_path), "k1")
    finally:
        os.umask(previous)
    assert folder.stat().st_mode & 0o777 == mode
    assert folder.parent.stat().st_mode & 0o777 == mode
