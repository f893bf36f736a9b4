"""Faults, concurrent runs and bad input: nothing lost, nothing stale served, one clear
message. docs/reliability.md lists each case with the test that pins it."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import xarray as xr

from mlm import MlmError, Project

from conftest import REPO, cache_snapshot, missing, needs_tool, render, run_mlm

EXAMPLE = REPO / "example_project"


def trace_folder(root: Path) -> Path:
    project = Project(root)
    return project.store.trace_dir("model", project.fit_key())


def slow_fit(root: Path, marker: Path, draws: int = 200_000) -> None:
    """Make fit.py touch `marker` when it starts and sample for a long time."""
    fit = root / "fit.py"
    fit.write_text(
        fit.read_text()
        .replace(
            "    with model:\n", f"    open({str(marker)!r}, 'w').close()\n    with model:\n", 1
        )
        .replace("draws=200, tune=200", f"draws={draws}, tune=500")
    )


def start_mlm(root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlm", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert path.exists(), proc.communicate()[1] if proc.poll() is not None else "timed out"


# faults -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_during_sampling_exits_130_and_caches_nothing(fitted_dir: Path):
    marker = fitted_dir / "started"
    slow_fit(fitted_dir, marker)
    before = cache_snapshot(fitted_dir)
    proc = start_mlm(fitted_dir, "run", "fit")
    wait_for(marker, proc)
    time.sleep(6)  # compile, then sample for a while
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    after = cache_snapshot(fitted_dir)
    assert {k: v for k, v in after.items() if k.startswith("fit/")} == {
        k: v for k, v in before.items() if k.startswith("fit/")
    }
    assert not list((fitted_dir / ".mlm" / "fit" / "model").glob(".tmp-*"))
    assert Project(fitted_dir).status()[2].state == "stale"


@pytest.mark.slow
def test_a_run_started_with_sigint_ignored_keeps_ignoring_it(fitted_dir: Path):
    """`mlm run fit &` in a script starts with SIGINT ignored, so that the script's Ctrl-C
    leaves it be; the fit must not take SIGINT back during sampling (the Dask path and
    Python itself keep it ignored)."""
    marker = fitted_dir / "started"
    fit = fitted_dir / "fit.py"
    fit.write_text(
        fit.read_text()
        .replace(
            "    with model:\n",
            f"    open({str(marker)!r}, 'w').close()\n    with model:\n",
            1,
        )
        .replace("draws=200, tune=200", "draws=100_000, tune=500")
    )
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child
    try:
        proc = start_mlm(fitted_dir, "run", "fit")
    finally:
        signal.signal(signal.SIGINT, handler)
    wait_for(marker, proc)
    time.sleep(3)  # compile, then sample for a while
    assert proc.poll() is None, "the fit ended before the SIGINT: sample for longer"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    assert "interrupted" not in stderr and "sampled in" in stderr, stderr
    assert Project(fitted_dir).status()[2].state == "fresh"


def test_corrupted_trace_is_detected_reported_and_refitted(fitted_dir: Path):
    folder = trace_folder(fitted_dir)
    nc = folder / "trace.nc"
    payload = bytearray(nc.read_bytes())
    payload[len(payload) // 2] ^= 0xFF  # same size: only the checksum can tell
    nc.write_bytes(bytes(payload))
    for png in (fitted_dir / "figures").iterdir():
        png.unlink()
    done = run_mlm("run", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "does not match its checksum" in done.stderr
    assert "sampling" in done.stderr
    assert list(folder.parent.glob(f".corrupt-{folder.name}-*"))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["trace_sha256"]
    xr.load_datatree(folder / "trace.nc")  # the refitted trace is whole


@pytest.mark.parametrize("command", ["summary", "check", "report"])
def test_summary_check_and_report_never_use_a_trace_that_fails_its_checksum(
    fitted_dir: Path, command: str
):
    # Thresholds every fit passes: check() needs nothing beyond the manifest's numbers.
    with (fitted_dir / "mlm.toml").open("a") as toml:
        toml.write(
            "\n[check]\nr_hat = 10.0\ness_bulk = 1\ness_tail = 1\ndivergences = 10000\n"
            "e_bfmi = 0.0\ntree_depth = 1.0\n"
        )
    assert all(row.passed for row in Project(fitted_dir).check())
    folder = trace_folder(fitted_dir)
    nc = folder / "trace.nc"
    payload = bytearray(nc.read_bytes())
    payload[len(payload) // 2] ^= 0xFF  # same size: the manifest's numbers still look fine
    nc.write_bytes(bytes(payload))
    report = fitted_dir / "report.html"
    report.unlink(missing_ok=True)
    with pytest.raises(MlmError, match="does not match its checksum"):
        getattr(Project(fitted_dir), command)()
    # Set aside, never read again; nothing was made from it.
    assert not folder.exists()
    assert len(list(folder.parent.glob(f".corrupt-{folder.name}-*"))) == 1
    assert not report.exists()
    fit = Project(fitted_dir).status()[2]
    assert fit.state == "missing" and "1 corrupt trace(s) set aside" in fit.reason, fit


def test_truncated_trace_is_stale_in_status_and_refitted(fitted_dir: Path):
    nc = trace_folder(fitted_dir) / "trace.nc"
    nc.write_bytes(nc.read_bytes()[:1000])
    fit = Project(fitted_dir).status()[2]
    assert fit.state == "stale" and "truncated" in fit.reason
    assert [r.stage for r in Project(fitted_dir).run("fit") if r.ran] == ["fit"]
    assert Project(fitted_dir).status()[2].fresh


def disk_full(self, path, *args, **kwargs):
    Path(path).write_bytes(b"half a file")
    raise OSError(errno.ENOSPC, "No space left on device", str(path))


def read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))


@pytest.mark.parametrize(
    "target, attribute, fault, message",
    [
        (xr.DataTree, "to_netcdf", disk_full, "No space left on device"),
        (tempfile, "mkdtemp", read_only, "Read-only file system"),
    ],
    ids=["disk full", "read-only folder"],
)
def test_a_failing_write_keeps_the_old_cache_and_says_why(
    fitted_dir: Path, monkeypatch, target, attribute, fault, message
):
    before = cache_snapshot(fitted_dir)
    (fitted_dir / "fit.py").write_text(
        (fitted_dir / "fit.py").read_text().replace("draws=200", "draws=210")
    )

    monkeypatch.setattr(target, attribute, fault)
    with pytest.raises(MlmError, match=rf"could not write the trace .*{message}"):
        Project(fitted_dir).run("fit")
    after = cache_snapshot(fitted_dir)
    assert {k: v for k, v in after.items() if k.startswith("fit/")} == {
        k: v for k, v in before.items() if k.startswith("fit/")
    }
    assert not list((fitted_dir / ".mlm" / "fit" / "model").glob(".tmp-*"))


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("format", 0, "cache format 0"),
        ("key", "0000000000000000", "its manifest is for key 0000000000000000"),
    ],
)
def test_manifest_of_another_format_or_key_is_stale_with_a_reason(fitted_dir, field, value, reason):
    path = trace_folder(fitted_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest[field] = value
    path.write_text(json.dumps(manifest))
    fit = Project(fitted_dir).status()[2]
    assert fit.state == "stale" and reason in fit.reason


def test_traces_of_another_mlm_are_reported_and_kept_while_the_key_holds(fitted_dir: Path):
    path = trace_folder(fitted_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["mlm_version"] = "0.0.1"
    path.write_text(json.dumps(manifest))
    fit = Project(fitted_dir).status()[2]
    assert fit.fresh and "made by mlm 0.0.1" in fit.reason


def test_a_pymc_upgrade_makes_the_fit_stale_and_says_so(fitted_dir: Path, monkeypatch):
    import mlm.stages.model

    real = mlm.stages.model.library_versions

    def upgraded(names):
        versions = real(names)
        if "pymc version" in versions:
            versions["pymc version"] = "99.0.0"
        return versions

    monkeypatch.setattr(mlm.stages.model, "library_versions", upgraded)
    fit = Project(fitted_dir).status()[2]
    assert (fit.state, fit.reason) == ("stale", "pymc version changed")


# concurrency ------------------------------------------------------------------------------
def gated_fit(root: Path, started: Path, release: Path) -> None:
    """Make fit.py touch `started`, then hold (with the fit lock taken) until `release`
    exists: the test decides when the first fit may finish, so no timing decides it."""
    fit = root / "fit.py"
    gate = (
        f"    open({str(started)!r}, 'w').close()\n"
        "    import os, time\n"
        "    deadline = time.monotonic() + 600\n"
        f"    while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n"
    )
    source = fit.read_text()
    assert "    with model:\n" in source
    fit.write_text(source.replace("    with model:\n", gate + "    with model:\n", 1))


class StderrWatch:
    """A process's stderr, read as it comes, and an event set once `text` has appeared."""

    def __init__(self, proc: subprocess.Popen, text: str):
        import threading

        self.lines: list[str] = []
        self.seen = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(proc, text), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen, text: str) -> None:
        for line in proc.stderr:
            self.lines.append(line)
            if text in line:
                self.seen.set()

    def text(self) -> str:
        self._thread.join(60)
        return "".join(self.lines)


@pytest.mark.slow
def test_a_second_fit_waits_for_the_first_and_does_not_resample(fitted_dir: Path):
    started, release = fitted_dir / "started", fitted_dir / "release"
    gated_fit(fitted_dir, started, release)
    first = start_mlm(fitted_dir, "run", "fit")
    second = None
    try:
        wait_for(started, first)  # the first holds the lock from here until `release`
        started.unlink()
        # While the first fits: status reads only complete traces, --no-wait fails fast.
        status = run_mlm("status", cwd=fitted_dir)
        assert status.returncode == 0, status.stderr
        fit_row = next(line for line in status.stdout.splitlines() if line.split()[:1] == ["fit"])
        assert "stale" in fit_row and "being fitted now by mlm (pid" in fit_row, status.stdout
        eager = run_mlm("run", "fit", "--no-wait", cwd=fitted_dir)
        assert eager.returncode == 1
        assert f"another mlm process (pid {first.pid})" in eager.stderr, eager.stderr
        assert "sampling" not in eager.stderr
        second = start_mlm(fitted_dir, "run", "fit")
        watch = StderrWatch(second, "waiting: mlm (pid")
        # Handshake: the first may finish only once the second is waiting on the lock.
        assert watch.seen.wait(240), watch.text()
    finally:
        release.touch()
    _, first_err = first.communicate(timeout=600)
    second.wait(timeout=600)
    second_err = watch.text()
    assert first.returncode == 0, first_err
    assert "sampling" in first_err
    assert second.returncode == 0, second_err
    assert f"waiting: mlm (pid {first.pid}) is fitting this model" in second_err
    assert f"fitted meanwhile by mlm (pid {first.pid})" in second_err
    assert "sampling" not in second_err and not started.exists()
    # Two traces: the session's first fit and this one; the second run added none.
    project = Project(fitted_dir)
    assert len(project.store.trace_keys("model")) == 2
    assert project.store.latest_key("model") == project.fit_key()
    assert project.status()[2].fresh


# bad input --------------------------------------------------------------------------------
def example_copy(tmp_path: Path) -> Path:
    root = tmp_path / "trial"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlm", "figures", "*.html"))
    shutil.rmtree(root / "models")
    return root


def edit_csv(root: Path, change) -> None:
    import pandas as pd

    path = root / "data" / "partially_clustered.csv"
    frame = pd.read_csv(path)
    change(frame).to_csv(path, index=False)


@pytest.mark.parametrize(
    "case, change, expected",
    [
        (
            "nan",
            lambda f: f.assign(y=f["y"].where(f.index != 3)),
            "the data have missing (NaN) values: y at rows [3]; drop or fix those rows",
        ),
        (
            "inf",
            lambda f: f.assign(y=f["y"].where(f.index != 5, float("inf"))),
            "model.py: build(): the observed variable 'y' has 1 infinite value(s) at positions [5]",
        ),
        (
            "missing column",
            lambda f: f.drop(columns="group"),
            "the data's columns: subject, condition, y",
        ),
        ("string outcome", lambda f: f.assign(y="high"), "model.py, in build() raised"),
        (
            "one condition",
            lambda f: f.assign(condition="treated"),
            "column 'condition' holds only ['treated']",
        ),
        ("empty", lambda f: f.iloc[:0], "data.py: load() returned an empty DataFrame"),
    ],
)
def test_bad_data_gives_one_message_and_exit_1(tmp_path, case, change, expected):
    root = example_copy(tmp_path)
    edit_csv(root, change)
    done = run_mlm("run", "model", cwd=root)
    assert done.returncode == 1, (case, done.stderr)
    assert expected in done.stderr, done.stderr
    assert "Traceback (most recent call last)" not in done.stderr


def test_nan_in_an_observed_array_is_refused_not_imputed(project_dir: Path):
    # Observed values passed as a plain array (not pm.Data): PyMC would impute the NaN.
    model = project_dir / "model.py"
    source = model.read_text()
    plain = source.replace("observed=score,", 'observed=data["score"].to_numpy(),')
    plain = plain.replace('score = pm.Data("score_obs", data["score"].to_numpy(), dims="obs")', "")
    assert plain.count("pm.Data") == source.count("pm.Data") - 1
    model.write_text(plain)
    scores = project_dir / "data" / "scores.csv"
    lines = scores.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[4].split(",")
    row[header.index("score")] = ""
    lines[4] = ",".join(row)
    scores.write_text("\n".join(lines) + "\n")
    done = run_mlm("run", "model", cwd=project_dir)
    assert done.returncode == 1
    assert (
        "model.py: build(): the observed variable 'score' has missing (NaN) values, which PyMC "
        "would silently impute" in " ".join(done.stderr.split())
    ), done.stderr


def test_a_group_with_one_member_is_valid(tmp_path):
    root = example_copy(tmp_path)
    edit_csv(root, lambda f: f[~((f["group"] == 3) & (f["subject"] != 21))])
    done = run_mlm("run", "model", cwd=root)
    assert done.returncode == 0, done.stderr


def test_a_model_without_observed_data_is_refused(project_dir: Path):
    model = project_dir / "model.py"
    source = model.read_text()
    model.write_text(source.replace(", observed=score", ""))
    assert model.read_text() != source
    done = run_mlm("run", "model", cwd=project_dir)
    assert done.returncode == 1
    assert "model.py: build() returned a model with no observed variable" in done.stderr


# names and the network --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../x", "/tmp/elsewhere", "naïve", "two words", "x/../../y"])
def test_new_refuses_names_that_would_escape_or_surprise(tmp_path: Path, name: str):
    done = run_mlm("new", "--", name, cwd=tmp_path)
    assert done.returncode == 1 and "is not a valid project name" in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert not Path("/tmp/elsewhere").exists() or name != "/tmp/elsewhere"


@pytest.mark.slow
def test_no_step_needs_the_network(tmp_path: Path):
    needs_tool("unshare")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        missing(f"a network namespace: `unshare --net` failed (needs root): {probe.stderr.strip()}")
    root = render(tmp_path)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    for args in (["new", "other"], ["run"], ["report"]):
        cwd = tmp_path if args[0] == "new" else root
        done = subprocess.run(
            ["unshare", "--net", sys.executable, "-m", "mlm", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (args, done.stderr[-2000:])


# properties -------------------------------------------------------------------------------
def test_the_cache_holds_no_pickles(fitted_dir: Path):
    for path in (fitted_dir / ".mlm").rglob("*"):
        if path.is_file():
            head = path.read_bytes()[:2]
            assert not (
                head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
            ), path
            assert path.suffix in (".json", ".nc", ".lock"), path
