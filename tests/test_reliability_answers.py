"""No silent wrong answer, no lost sampling (issue 13, items 1-8): each case fails without
its fix. docs/reliability.md lists them with these tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlm import MlmError, Project

from conftest import run_mlm

OLD_TEMPLATE_MODEL = """import pandas as pd
import pymc as pm


def build(data):
    school_idx, schools = pd.factorize(data["school"], sort=True)
    with pm.Model(coords={"school": list(schools), "obs": data.index.to_numpy()}) as model:
        school = pm.Data("school_idx", school_idx, dims="obs")
        sigma = pm.HalfNormal("sigma", 10)
        effect = pm.Normal("effect", 50, 25, dims="school")
        pm.Normal("score", effect[school], sigma, observed=data["score"].to_numpy(), dims="obs")
    return model
"""

UNIQUE_MODEL = """import numpy as np
import pymc as pm


def build(data):
    # np.unique puts a missing label in a group of its own ("nan"): no index is negative.
    schools, school_idx = np.unique(data["school"].to_numpy().astype(str), return_inverse=True)
    with pm.Model(coords={"school": schools}) as model:
        effect = pm.Normal("effect", 50, 25, dims="school")
        pm.Normal("score", effect[school_idx], 10, observed=data["score"].to_numpy())
    return model
"""


def blank_school(root: Path, row: int = 3) -> None:
    path = root / "data" / "scores.csv"
    lines = path.read_text().splitlines()
    cells = lines[row + 1].split(",")
    cells[1] = ""
    lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


# 1. a missing value in a grouping column ----------------------------------------------------
def test_the_templates_build_refuses_an_empty_school(project_dir: Path):
    blank_school(project_dir)
    done = run_mlm("run", "model", cwd=project_dir)
    assert done.returncode == 1
    assert "column 'school' is empty at rows [3]" in done.stderr, done.stderr


def test_a_negative_index_from_a_missing_label_is_refused_in_any_model(project_dir: Path):
    (project_dir / "model.py").write_text(OLD_TEMPLATE_MODEL)  # no check of its own
    blank_school(project_dir, 5)
    done = run_mlm("run", "fit", cwd=project_dir)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "'school_idx' indexes effect (length 8) with -1 at position(s) 5" in message, message
    assert "school at rows [5]" in message and "sampling" not in done.stderr
    assert not list((project_dir / ".mlm").rglob("trace.nc"))


def test_missing_values_in_a_column_build_reads_are_named(project_dir: Path):
    (project_dir / "model.py").write_text(UNIQUE_MODEL)
    blank_school(project_dir, 7)
    done = run_mlm("run", "model", cwd=project_dir)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "build() reads columns with missing values: school at rows [7]" in message, message


def test_a_column_build_never_reads_may_have_missing_values(project_dir: Path):
    path = project_dir / "data" / "scores.csv"
    path.write_text(path.read_text().replace("pupil,school", "pupil,school", 1))
    frame_text = path.read_text().splitlines()
    frame_text[0] += ",note"
    frame_text[1:] = [line + ("," if i % 2 else ",seen") for i, line in enumerate(frame_text[1:])]
    path.write_text("\n".join(frame_text) + "\n")
    assert run_mlm("run", "model", cwd=project_dir).returncode == 0


# 2. a data change that keeps the file's size and modification time -------------------------
def _same_size_change(path: Path) -> None:
    text = path.read_text()
    changed = text.replace("69.3", "69.4", 1)
    assert changed != text and len(changed) == len(text)
    stat = path.stat()
    path.write_text(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # touch -r / cp -p / rsync -a
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size


def test_a_restored_file_with_an_old_timestamp_is_seen(fitted_dir: Path):
    _same_size_change(fitted_dir / "data" / "scores.csv")
    rows = {r.stage: r for r in Project(fitted_dir).status()}
    assert rows["data"].state == "stale" and "data/scores.csv changed" in rows["data"].reason
    assert rows["fit"].state == "stale"


def test_a_file_copied_back_with_its_stamps_is_seen(fitted_dir: Path, tmp_path: Path):
    csv = fitted_dir / "data" / "scores.csv"
    backup = tmp_path / "scores.csv"
    shutil.copy2(csv, backup)
    _same_size_change(backup)
    shutil.copy2(backup, csv)  # cp -p: content and mtime of the backup
    assert Project(fitted_dir).status()[0].state == "stale"


def test_an_unchanged_data_folder_is_not_read_again(fitted_dir: Path, monkeypatch):
    Project(fitted_dir).run("data")  # notes the copied files' new stamps
    import mlm.stages.data

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed although nothing changed")

    monkeypatch.setattr(mlm.stages.data, "file_digest", no_hashing)
    monkeypatch.setattr(mlm.stages.data, "SETTLED_NS", 0)
    assert Project(fitted_dir).status()[0].fresh


# 7. an edit of data.py that returns the same data --------------------------------------------
def test_a_refactor_of_data_py_loads_once_then_never_again(fitted_dir: Path):
    data_py = fitted_dir / "data.py"
    data_py.write_text(data_py.read_text() + "\n\nUNUSED = 1\n")
    first = run_mlm("run", "fit", cwd=fitted_dir)
    assert first.returncode == 0 and "data loading" in " ".join(first.stderr.split())
    second = run_mlm("run", "fit", cwd=fitted_dir)
    assert second.returncode == 0 and "loading" not in second.stderr, second.stderr


# 3. a failure after sampling keeps the draws -------------------------------------------------
FAILING_AFTER_SAMPLING = '''"""Sampling that fails after pm.sample while the file `fail` exists."""

import os

import pymc as pm


def sample(model, project):
    with model:
        idata = pm.sample(draws=200, tune=200, chains=2, random_seed=project.seed)
        if os.path.exists("fail"):
            raise MemoryError("out of memory in compute_log_likelihood (simulated)")
        pm.compute_log_likelihood(idata)
    return idata
'''


@pytest.mark.slow
def test_draws_survive_a_failure_after_sampling_and_are_finished_without_resampling(
    project_dir: Path,
):
    (project_dir / "fit.py").write_text(FAILING_AFTER_SAMPLING)
    (project_dir / "fail").touch()
    failed = run_mlm("run", "fit", cwd=project_dir)
    assert failed.returncode == 1
    message = " ".join(failed.stderr.split())
    assert "MemoryError: out of memory" in message and "the posterior draws are kept" in message
    fit = Project(project_dir).status()[2]
    assert fit.state == "stale" and fit.reason.startswith("incomplete: the draws are kept")
    # Figures can use the kept draws meanwhile (the run still says the fit failed) ...
    drawn = run_mlm("run", cwd=project_dir)
    assert drawn.returncode == 1 and (project_dir / "figures" / "coefficients.png").is_file()
    assert "figures use the kept draws" in drawn.stderr
    kept = Project(project_dir).store.load_incomplete("model", fit.key)
    # ... and once the cause is gone, fit.py is finished on them: no new sampling.
    (project_dir / "fail").unlink()
    finished = run_mlm("run", "fit", cwd=project_dir)
    assert finished.returncode == 0, finished.stderr
    said = " ".join(finished.stderr.split())
    assert "finishing fit.py on the kept draws" in said and "finished on the kept draws" in said
    project = Project(project_dir)
    idata = project.idata
    assert "log_likelihood" in idata.children
    assert (idata["posterior"]["slope"] == kept["posterior"]["slope"]).all()
    assert not project.store.has_incomplete("model", fit.key)
    # The figures drawn from the incomplete draws are redrawn from the finished trace.
    assert not project.status()[3].fresh


SAMPLING_TWICE_THEN_FAILING = '''"""Sampling twice, as after divergences, then failing."""

import pymc as pm


def sample(model, project):
    with model:
        idata = pm.sample(draws=100, tune=100, chains=2, random_seed=project.seed)
        idata = pm.sample(draws=150, tune=100, chains=2, random_seed=project.seed)
        raise MemoryError("out of memory after the second try (simulated)")
'''


def test_the_draws_kept_are_the_last_pm_sample_s(project_dir: Path):
    # The template's fit.py samples again at target_accept 0.99 after divergences: what it
    # goes on with, and what a failure after it must keep, is the second try's draws.
    (project_dir / "fit.py").write_text(SAMPLING_TWICE_THEN_FAILING)
    failed = run_mlm("run", "fit", cwd=project_dir)
    assert failed.returncode == 1 and "the posterior draws are kept" in " ".join(
        failed.stderr.split()
    )
    fit = Project(project_dir).status()[2]
    kept = Project(project_dir).store.load_incomplete("model", fit.key)
    assert kept["posterior"].sizes["draw"] == 150


def test_an_unwritable_store_is_found_before_sampling(project_dir: Path):
    Project(project_dir).run("model")
    fit_dir = project_dir / ".mlm" / "fit"
    fit_dir.mkdir(parents=True, exist_ok=True)
    (fit_dir / "model").write_text("a file where the trace folder should be")
    done = run_mlm("run", "fit", cwd=project_dir)
    assert done.returncode == 1
    assert "nothing was sampled" in " ".join(done.stderr.split())
    assert "sampling" not in done.stderr


# 5. one reading of the store in every command ----------------------------------------------
@pytest.mark.parametrize("damage", ["truncate", "manifest"])
def test_a_damaged_trace_reads_the_same_in_status_run_check_and_summary(
    fitted_dir: Path, damage: str
):
    project = Project(fitted_dir)
    folder = project.store.trace_dir("model", project.fit_key())
    if damage == "truncate":
        trace = folder / "trace.nc"
        trace.write_bytes(trace.read_bytes()[:1000])
        reason = "truncated or changed"
    else:
        (folder / "manifest.json").write_text("{not json")
        reason = "manifest is missing or unreadable"
    status = run_mlm("status", cwd=fitted_dir)
    dry = run_mlm("run", "--dry", cwd=fitted_dir)
    check = run_mlm("check", cwd=fitted_dir)
    summary = run_mlm("summary", cwd=fitted_dir)
    assert reason in " ".join(status.stdout.split())
    assert "would run fit" in dry.stdout and reason in " ".join(dry.stdout.split())
    for done in (check, summary):
        assert done.returncode == 1 and reason in " ".join(done.stderr.split()), done.stderr


def test_quarantined_traces_are_listed_by_status(fitted_dir: Path):
    project = Project(fitted_dir)
    folder = project.store.trace_dir("model", project.fit_key())
    trace = folder / "trace.nc"
    data = bytearray(trace.read_bytes())
    data[len(data) // 2] ^= 0xFF
    trace.write_bytes(bytes(data))
    with pytest.raises(MlmError, match="does not match its checksum"):
        project.check()
    fit = Project(fitted_dir).status()[2]
    assert "1 corrupt trace(s) set aside (.corrupt-" in fit.reason
    assert "`mlm clean` removes them" in fit.reason


# 6. what a killed run leaves is swept by the next -------------------------------------------
def test_half_written_traces_are_swept_by_the_next_fit(fitted_dir: Path):
    project = Project(fitted_dir)
    fit_dir = project.store.paths.fit_dir("model")
    leftover = fit_dir / ".tmp-deadbeef-x1"
    leftover.mkdir()
    (leftover / "trace.nc").write_bytes(b"\0" * 1000)
    project.run("fit", force=True)
    assert not leftover.exists()


# 8. the second of two concurrent fits says it waited -----------------------------------------
def test_a_fit_that_waited_for_another_says_so(fitted_dir: Path):
    import threading

    project = Project(fitted_dir)
    folder = project.store.trace_dir("model", project.fit_key())
    aside = fitted_dir / "trace-aside"
    os.replace(folder, aside)
    said = []
    holding = threading.Event()
    release = threading.Event()

    def other_mlm():
        # Another process's fit, played by a thread: it holds the lock, then stores the trace.
        with project.store.lock("fit-model"):
            holding.set()
            release.wait(60)
            os.replace(aside, folder)

    thread = threading.Thread(target=other_mlm)
    thread.start()
    holding.wait(60)
    assert "being fitted now by mlm (pid" in Project(fitted_dir).status()[2].reason

    def progress(stage: str, message: str) -> None:
        said.append(message)
        if message.startswith("waiting: mlm (pid"):
            release.set()  # handshake: the other fit ends only once this one waits on it

    rows = Project(fitted_dir, progress=progress).run("fit")
    release.set()  # had this run not waited, the other would still be holding
    thread.join(60)
    assert any(m.startswith("waiting: mlm (pid") for m in said), said
    assert rows[-1].reason.startswith("fitted meanwhile by mlm (pid"), rows[-1]
    assert not any(m.startswith("sampling") for m in said)


def test_mlm_new_drop_missing_leaves_out_rows_as_lme4_does_and_says_so(tmp_path: Path):
    import pandas as pd

    messy = tmp_path / "messy.csv"
    # a missing g (row 2) and x (rows 4, 5); a missing note, a column the model does not use
    messy.write_text(
        "y,g,x,note\n1.0,a,1,\n1.5,b,2,ok\n2.0,,3,ok\n3,a,4,ok\n2,b,,ok\n2.5,a,,ok\n"
        + "".join(f"{1 + i % 3},{'ab'[i % 2]},{i},ok\n" for i in range(8))
    )
    formula = "y ~ x + (1 | g)"
    alone = run_mlm("new", "q", "--formula", formula, "--drop-missing", cwd=tmp_path)
    assert alone.returncode == 1 and "--drop-missing needs --data" in alone.stderr
    done = run_mlm(
        "new", "p", "--formula", formula, "--data", str(messy), "--drop-missing", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "leaves out 3 of 14 rows of messy.csv with a missing value (missing x: 2, g: 1)" in said
    root = tmp_path / "p"
    source = (root / "data.py").read_text()
    assert 'return data.dropna(subset=["y", "x", "g"])' in source
    comment = " ".join(line.strip(" #") for line in source.splitlines() if "#" in line)
    assert (
        "When `mlm new --drop-missing` wrote this, that was 3 of 14 rows (missing x: 2, g: 1)"
        in (comment)
    )
    loaded = Project(root).run("data")
    assert loaded[0].fresh
    data = Project(root).data
    assert len(data) == 11 and data.index.tolist() == [0, 1, 3, *range(6, 14)]
    assert pd.isna(data["note"]).sum() == 1  # the model's columns only
    # nothing missing: data.py reads every row, as without the option
    clean = tmp_path / "clean.csv"
    clean.write_text("y,g,x\n" + "".join(f"{i % 3},{'ab'[i % 2]},{i}\n" for i in range(8)))
    done = run_mlm(
        "new", "c", "--formula", formula, "--data", str(clean), "--drop-missing", cwd=tmp_path
    )
    assert done.returncode == 0 and "leaves out" not in done.stderr
    assert "dropna" not in (tmp_path / "c" / "data.py").read_text()


def test_mlm_new_names_the_rows_of_a_messy_csv(tmp_path: Path):
    messy = tmp_path / "messy.csv"
    messy.write_text("y,g,x\n1.0,a,1\n1.5,b,2\n2.0,,3\n3,a,4\n2,b,5\n")
    done = run_mlm("new", "p", "--formula", "y ~ x + (1 | g)", "--data", str(messy), cwd=tmp_path)
    assert done.returncode == 1 and not (tmp_path / "p").exists()
    said = " ".join(done.stderr.split())
    assert "messy.csv: column 'g' has 1 missing value(s), at rows [2]" in said
    assert "add --drop-missing to leave those rows out, as lme4 and Stata do" in said
    messy.write_text("y,g,x\n1.0,a,1\nhigh,b,2\n2.0,a,3\n3,a,4\n2,b,5\n")
    done = run_mlm("new", "p", "--formula", "y ~ x + (1 | g)", "--data", str(messy), cwd=tmp_path)
    assert "the response 'y' must be numeric: 'high' at row 1" in " ".join(done.stderr.split())
