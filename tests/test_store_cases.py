"""The store's remaining cases, one test each, found unguarded by mutation testing
(docs/testing.md): exact reasons, forced refits, kept draws, sweeping, cleaning, locks,
cached predictions and the file helpers. No sampling: traces are made by hand."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from mlm.errors import MlmError
from mlm.store import FILE_MODE, CorruptTrace, Record, Store, StorePaths, files, locks, now, traces


def _trace(value: float = 0.0) -> xr.DataTree:
    posterior = xr.Dataset({"mu": (("chain", "draw"), np.full((2, 5), value))})
    return xr.DataTree.from_dict({"posterior": posterior})


def _save(store: Store, key: str, value: float = 0.0, variant: str = "model") -> Path:
    return store.save_trace(variant, Record(key, {"seed": 1}), _trace(value))


def _mu(idata) -> float:
    return float(idata["posterior"]["mu"].mean())


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# paths and records --------------------------------------------------------------------------
def test_each_path_is_where_the_store_layout_says():
    paths = StorePaths(Path("/p"))
    assert {
        "data": paths.data_record,
        "model": paths.model_record("m"),
        "figure": paths.figure_record("m", "f"),
        "compare": paths.compare_record,
        "trace": paths.trace_file("m", "k"),
        "manifest": paths.trace_manifest("m", "k"),
        "incomplete": paths.incomplete_dir("m", "k"),
        "latest": paths.latest("m"),
        "study": paths.study_dir("m"),
        "point": paths.study_point("m", "k"),
        "replicate": paths.replicate("m", "k", 7),
        "draws": paths.prediction_draws("m", "k"),
        "predicted": paths.prediction_manifest("m", "k"),
        "lock": paths.lock("fit-m"),
    } == {
        "data": Path("/p/.mlm/data.json"),
        "model": Path("/p/.mlm/model/m.json"),
        "figure": Path("/p/.mlm/graphics/m/f.json"),
        "compare": Path("/p/.mlm/compare.json"),
        "trace": Path("/p/.mlm/fit/m/k/trace.nc"),
        "manifest": Path("/p/.mlm/fit/m/k/manifest.json"),
        "incomplete": Path("/p/.mlm/fit/m/.incomplete-k"),
        "latest": Path("/p/.mlm/fit/m/latest.json"),
        "study": Path("/p/.mlm/study/m"),
        "point": Path("/p/.mlm/study/m/k/point.json"),
        "replicate": Path("/p/.mlm/study/m/k/00007.json"),
        "draws": Path("/p/.mlm/predict/m/k/draws.nc"),
        "predicted": Path("/p/.mlm/predict/m/k/manifest.json"),
        "lock": Path("/p/.mlm/locks/fit-m.lock"),
    }
    assert Store(Path("/p")).dir == Path("/p/.mlm")


def test_a_record_keeps_its_details_and_timestamp():
    record = Record("k", {"a": 1}, "2026-01-01T00:00:00+00:00", {"rows": 3})
    assert record.get("rows") == 3 and record.get("absent") is None
    assert record.get("absent", 7) == 7
    more = record.with_details(cols=2)
    assert (more.key, more.inputs, more.made_at) == (record.key, record.inputs, record.made_at)
    assert more.details == {"rows": 3, "cols": 2}
    assert Record.from_json({"key": "k", "inputs": [1]}).inputs == {}  # not a dict: none
    assert Record.from_json({"key": "k"}).made_at == "?"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", now())


# traces: why one is unusable ------------------------------------------------------------------
def _manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    content = json.loads(path.read_text())
    content.update(changes)
    path.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: None, None),
        (lambda f: (f / "manifest.json").write_text("["), "its manifest is missing or unreadable"),
        (lambda f: (f / "manifest.json").unlink(), "its manifest is missing or unreadable"),
        (lambda f: _manifest(f, format=0), "cache format 0 (this mlm reads 1)"),
        (lambda f: _manifest(f, key="other"), "its manifest is for key other"),
        (lambda f: (f / "trace.nc").unlink(), "its trace file is missing"),
        (
            lambda f: (f / "trace.nc").write_bytes(b"x"),
            "its trace file is truncated or changed (size differs from the manifest)",
        ),
    ],
)
def test_each_reason_a_trace_is_unusable_is_said_exactly(tmp_path: Path, damage, reason):
    store = Store(tmp_path)
    damage(_save(store, "k1"))
    assert store.trace_problem("model", "k1") == reason
    assert store.has_trace("model", "k1") is (reason is None)
    assert store.trace_problem("model", "k2") == "absent"


def test_a_forced_refit_of_the_same_key_replaces_the_trace_and_leaves_nothing_aside(
    tmp_path: Path,
):
    store = Store(tmp_path)
    _save(store, "k1", 1.0)
    _save(store, "k0", 0.5)
    assert store.latest_key("model") == "k0"
    folder = _save(store, "k1", 2.0)
    assert folder == store.trace_dir("model", "k1")
    assert _mu(store.load_trace("model", "k1")) == 2.0
    assert _mu(store.load_trace("model", "k0")) == 0.5
    assert _names(store.paths.fit_dir("model")) == ["k0", "k1", "latest.json"]
    assert store.latest_key("model") == "k1"
    assert store.trace_keys("model")[0] == "k1"  # newest first


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (
            RuntimeError("Can't decrement id ref count"),
            "RuntimeError: Can't decrement id ref count",
        ),
        (OSError("no errno"), "OSError: no errno"),
    ],
)
def test_a_failing_trace_write_says_where_and_why(tmp_path: Path, monkeypatch, error, said):
    store = Store(tmp_path)

    def fail(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise error

    monkeypatch.setattr(xr.DataTree, "to_netcdf", fail)
    folder = store.paths.fit_dir("model")
    with pytest.raises(MlmError) as caught:
        _save(store, "k1")
    assert str(caught.value) == (
        f"could not write the trace to {folder}: {said}; earlier traces are intact"
    )
    assert _names(folder) == []


def test_a_ctrl_c_while_writing_leaves_no_staging_folder(tmp_path: Path, monkeypatch):
    store = Store(tmp_path)

    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _save(store, "k1")
    assert _names(store.paths.fit_dir("model")) == []


def test_a_trace_folder_gets_the_mode_mkdir_would_give(tmp_path: Path):
    folder = _save(Store(tmp_path), "k1")
    assert folder.stat().st_mode & 0o777 == files.dir_mode()
    assert (folder / "trace.nc").stat().st_mode & 0o777 == FILE_MODE
    old = os.umask(0o027)
    try:
        assert files.dir_mode() == 0o750
    finally:
        os.umask(old)


def test_a_corrupt_trace_is_set_aside_under_its_key_and_listed(tmp_path: Path):
    store = Store(tmp_path)
    folder = _save(store, "k1")
    (folder / "manifest.json").write_text(
        json.dumps({**json.loads((folder / "manifest.json").read_text()), "trace_sha256": "0"})
    )
    with pytest.raises(
        CorruptTrace, match=r"does not match its checksum .* moved it to \.corrupt-k1-"
    ):
        store.verify_trace("model", "k1")
    (aside,) = store.quarantined("model")
    assert aside.name.startswith(".corrupt-k1-") and (aside / "trace.nc").is_file()
    assert store.trace_keys("model") == []


# draws kept from a fit that failed after sampling -----------------------------------------
def test_kept_draws_live_beside_the_traces_and_are_never_the_latest(tmp_path: Path):
    store = Store(tmp_path)
    _save(store, "k0", 0.5)
    assert not store.has_incomplete("model", "k1")
    folder = store.save_incomplete("model", Record("k1", details={"failure": "oom"}), _trace(3.0))
    assert folder == store.paths.incomplete_dir("model", "k1")
    assert store.has_incomplete("model", "k1") and not store.has_trace("model", "k1")
    assert store.incomplete_record("model", "k1").get("failure") == "oom"
    assert _mu(store.load_incomplete("model", "k1")) == 3.0
    assert store.latest_key("model") == "k0"
    assert store.trace_keys("model") == ["k0"]
    store.drop_incomplete("model", "k1")
    assert not folder.exists() and store.incomplete_record("model", "k1") is None


def test_corrupt_kept_draws_are_set_aside_too(tmp_path: Path):
    store = Store(tmp_path)
    folder = store.save_incomplete("model", Record("k1"), _trace(3.0))
    data = bytearray((folder / "trace.nc").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "trace.nc").write_bytes(bytes(data))
    with pytest.raises(CorruptTrace):
        store.load_incomplete("model", "k1")
    assert not folder.exists() and len(store.quarantined("model")) == 1


# housekeeping -----------------------------------------------------------------------------
def test_check_writable_passes_quietly_or_names_the_folder(tmp_path: Path, monkeypatch):
    store = Store(tmp_path)
    store.check_writable("model")
    assert _names(store.paths.fit_dir("model")) == []  # the probe is gone

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(MlmError) as caught:
        store.check_writable("model")
    assert str(caught.value) == (
        f"cannot write to {store.paths.fit_dir('model')}: Read-only file system; nothing was "
        "sampled (make the project's .mlm/ folder writable, or free some space)"
    )


def test_sweep_removes_half_written_and_retired_folders_only(tmp_path: Path):
    store = Store(tmp_path)
    _save(store, "k1")
    fit = store.paths.fit_dir("model")
    for name in (".tmp-k2-a", ".old-k1-b", ".corrupt-k3-c"):
        (fit / name).mkdir()
        (fit / name / "trace.nc").write_bytes(b"x")
    (fit / ".tmp-probe").write_bytes(b"x")  # a probe file left by a kill
    store.sweep("model")
    assert _names(fit) == [".corrupt-k3-c", "k1", "latest.json"]


def test_removal_lists_what_clean_would_remove_and_removes_nothing(tmp_path: Path):
    store = Store(tmp_path)
    for i, key in enumerate(["a", "b", "c"]):
        os.utime(_save(store, key), (1_000_000 + i, 1_000_000 + i))
    os.utime(_save(store, "w", variant="wide"), (1_000_000, 1_000_000))
    (store.paths.fit_dir("model") / ".corrupt-a-1").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    everything = traces.removal(store.paths, ["model", "wide"])
    assert everything.everything and bool(everything)
    assert sorted(p.name for p in everything.traces) == ["a", "b", "c", "w"]
    assert [p.name for p in everything.leftovers] == [".corrupt-a-1"]
    kept = traces.removal(store.paths, ["model", "wide"], keep=1, current={"model": "a"})
    assert not kept.everything
    assert sorted(p.name for p in kept.traces) == ["b", "c"]
    nothing = traces.removal(store.paths, ["wide"], keep=1)
    assert not nothing and nothing.traces == [] and nothing.leftovers == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_clean_drops_everything_and_says_how_many_traces(tmp_path: Path):
    store = Store(tmp_path)
    _save(store, "a")
    _save(store, "b")
    _save(store, "w", variant="wide")
    assert store.variants() == ["model", "wide"]
    assert store.clean() == 3
    assert not store.dir.exists() and store.variants() == []


def test_pruning_to_nothing_forgets_the_latest_and_keeps_the_current_one_first(tmp_path: Path):
    store = Store(tmp_path)
    for i, key in enumerate(["a", "b", "c"]):
        os.utime(_save(store, key), (1_000_000 + i, 1_000_000 + i))
    assert store.clean(keep=1, current={"model": "a"}) == 2
    assert store.trace_keys("model") == ["a"] and store.latest_key("model") == "a"
    assert store.clean(keep=0) == 1
    assert store.trace_keys("model") == [] and store.latest_key("model") is None
    assert not store.paths.latest("model").exists()


def test_trace_keys_are_complete_trace_folders_only(tmp_path: Path):
    store = Store(tmp_path)
    _save(store, "k1")
    fit = store.paths.fit_dir("model")
    (fit / "no-manifest").mkdir()
    (fit / ".tmp-x").mkdir()
    (fit / ".tmp-x" / "manifest.json").write_text("{}")
    assert store.trace_keys("model") == ["k1"]
    assert store.trace_keys("nothing") == []


# locks ------------------------------------------------------------------------------------
def test_the_lock_holder_is_named_while_held_and_none_after(tmp_path: Path):
    store = Store(tmp_path)
    assert store.lock_holder("fit-model") is None  # no lock file yet
    with store.lock("fit-model"):
        assert store.lock_holder("fit-model") == str(os.getpid())
        assert store.paths.lock("fit-model").read_text() == str(os.getpid())
    assert store.lock_holder("fit-model") is None  # the file stays, nobody holds it


def test_a_waiting_writer_is_told_who_it_waits_for_then_gets_the_lock(tmp_path: Path):
    path = tmp_path / "locks" / "fit-model.lock"
    holding, release, order = threading.Event(), threading.Event(), []

    def other():
        with locks.hold(path, "fit-model"):
            holding.set()
            release.wait(30)
            order.append("other done")

    thread = threading.Thread(target=other)
    thread.start()
    holding.wait(30)
    told = []

    def on_wait(pid: str) -> None:
        told.append(pid)
        release.set()  # handshake: the holder lets go only once this one waits

    with locks.hold(path, "fit-model", on_wait=on_wait):
        order.append("this one holds")
    thread.join(30)
    assert told == [str(os.getpid())]
    assert order == ["other done", "this one holds"]
    with pytest.raises(MlmError, match=r"another mlm process \(pid \d+\) is writing fit-model"):
        with locks.hold(path, "fit-model"):
            with locks.hold(path, "fit-model", wait=False):
                pass


# cached predictions -----------------------------------------------------------------------
def _draws(value: float = 1.0) -> xr.DataArray:
    return xr.DataArray(np.full((2, 3), value), dims=("draw", "row"), name="y")


def test_predictions_round_trip_with_their_checksum(tmp_path: Path):
    store = Store(tmp_path)
    assert store.prediction_record("model", "p1") is None
    assert store.load_prediction("model", "p1") is None
    path = store.save_prediction("model", Record("p1", {"trace": "k1"}), _draws(2.0))
    assert path == store.paths.prediction_draws("model", "p1")
    record = store.prediction_record("model", "p1")
    assert record.inputs == {"trace": "k1"}
    assert record.get("draws_bytes") == path.stat().st_size
    assert len(record.get("draws_sha256")) == 16
    draws, again = store.load_prediction("model", "p1")
    assert float(draws.mean()) == 2.0 and again == record
    assert _names(path.parent) == ["draws.nc", "manifest.json"]
    assert path.stat().st_mode & 0o777 == FILE_MODE


@pytest.mark.parametrize("damage", ["same size", "size", "key", "gone"])
def test_damaged_predictions_are_never_read(tmp_path: Path, damage: str):
    store = Store(tmp_path)
    path = store.save_prediction("model", Record("p1"), _draws())
    manifest = store.paths.prediction_manifest("model", "p1")
    if damage == "same size":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        assert store.prediction_record("model", "p1") is not None  # the cheap check passes
    elif damage == "size":
        path.write_bytes(path.read_bytes() + b"x")
        assert store.prediction_record("model", "p1") is None
    elif damage == "key":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "key": "p2"}))
        assert store.prediction_record("model", "p1") is None
    else:
        path.unlink()
        assert store.prediction_record("model", "p1") is None
    assert store.load_prediction("model", "p1") is None


def test_a_failing_prediction_write_names_the_folder_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch
):
    store = Store(tmp_path)

    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.DataArray, "to_netcdf", full)
    folder = store.paths.prediction_draws("model", "p1").parent
    with pytest.raises(MlmError) as caught:
        store.save_prediction("model", Record("p1"), _draws())
    assert (
        str(caught.value) == f"could not write the predictions to {folder}: No space left on device"
    )
    assert _names(folder) == []

    def broken(self, path, *args, **kwargs):
        raise ValueError("bad dtype")

    monkeypatch.setattr(xr.DataArray, "to_netcdf", broken)
    with pytest.raises(MlmError, match=r"predictions to .*: ValueError: bad dtype$"):
        store.save_prediction("model", Record("p1"), _draws())
    assert _names(folder) == []


# files ------------------------------------------------------------------------------------
def test_an_atomic_write_replaces_whole_with_the_usual_mode_or_not_at_all(
    tmp_path: Path, monkeypatch
):
    path = tmp_path / "deep" / "x.json"
    files.atomic_write_json(path, {"b": 1, "a": [1]})
    assert path.read_text() == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    assert path.stat().st_mode & 0o777 == FILE_MODE == 0o666 & ~files._umask()
    assert files.read_json(path) == {"a": [1], "b": 1}

    def fail(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="I/O error"):
        files.atomic_write_bytes(path, b"new")
    assert files.read_json(path) == {"a": [1], "b": 1}
    assert _names(path.parent) == ["x.json"]  # no temporary left


@pytest.mark.parametrize("content", [None, "[1, 2]", "{not json", '"text"'])
def test_read_json_gives_none_for_anything_but_an_object(tmp_path: Path, content):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_text(content)
    assert files.read_json(path) is None


# second round: survivors of the first mutation run ------------------------------------------
def test_records_and_plain_json_round_trip_through_the_store(tmp_path: Path):
    store = Store(tmp_path)
    record = Record("k", {"a": 1}, details={"rows": 2})
    store.write(store.paths.data_record, record)
    assert store.read(store.paths.data_record) == record
    store.write_json(store.paths.replicate("m", "k", 1), {"x": 1})
    assert store.read_json(store.paths.replicate("m", "k", 1)) == {"x": 1}


def test_temporaries_are_made_beside_their_target_so_the_rename_is_atomic(
    tmp_path: Path, monkeypatch
):
    """os.replace is atomic only within one file system: every temporary name lies in the
    folder of what it replaces, hidden by a leading dot."""
    store = Store(tmp_path)
    _save(store, "k1")
    made = []
    real_mkdtemp, real_mkstemp = tempfile.mkdtemp, tempfile.mkstemp
    monkeypatch.setattr(
        tempfile, "mkdtemp", lambda **kw: made.append(("dir", kw)) or real_mkdtemp(**kw)
    )
    monkeypatch.setattr(
        tempfile, "mkstemp", lambda **kw: made.append(("file", kw)) or real_mkstemp(**kw)
    )
    _save(store, "k1")  # a forced refit: staging and retired folders
    store.save_prediction("model", Record("p1"), _draws())
    fit = store.paths.fit_dir("model")
    predict = store.paths.prediction_draws("model", "p1").parent
    folders = [kw for kind, kw in made if kind == "dir"]
    assert folders == [
        {"prefix": ".tmp-k1-", "dir": fit},
        {"prefix": ".old-k1-", "dir": fit},
    ]
    temporaries = {(kw["dir"], kw["prefix"], kw["suffix"]) for kind, kw in made if kind == "file"}
    assert (predict, ".draws.", ".nc") in temporaries
    assert any(p == ".manifest.json." and s == ".tmp" for _, p, s in temporaries)
    assert (fit, ".latest.json.", ".tmp") in temporaries


def test_the_write_probe_is_a_hidden_temporary_in_the_fit_folder(tmp_path: Path, monkeypatch):
    store = Store(tmp_path)
    seen = []
    real = tempfile.NamedTemporaryFile

    def spy(**kw):
        seen.append(kw)
        return real(**kw)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", spy)
    store.check_writable("model")
    assert seen == [{"dir": store.paths.fit_dir("model"), "prefix": ".tmp-"}]


def test_a_staging_folder_that_cannot_be_made_is_one_message(tmp_path: Path, monkeypatch):
    store = Store(tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(MlmError, match=r"could not write the trace to .*: Read-only file system;"):
        _save(store, "k1")


def test_a_prediction_folder_that_cannot_be_made_is_one_message(tmp_path: Path):
    store = Store(tmp_path)
    predict = store.paths.predictions_dir("model")
    predict.parent.mkdir(parents=True)
    predict.write_text("a file where the folder should be")
    with pytest.raises(MlmError, match=r"could not write the predictions to "):
        store.save_prediction("model", Record("p1"), _draws())


def test_cleaning_what_is_not_there_is_no_error(tmp_path: Path):
    store = Store(tmp_path)
    assert store.clean() == 0  # no .mlm at all
    _save(store, "a")
    assert store.clean(keep=0) == 1
    assert store.clean(keep=0) == 0  # latest.json is gone already
    store.drop_incomplete("model", "a")  # nothing kept: nothing to drop
    assert bool(traces.Removal([Path("a")], [], False)) and bool(
        traces.Removal([], [Path("b")], False)
    )


def test_pruning_the_latest_trace_points_latest_at_the_current_one(tmp_path: Path):
    store = Store(tmp_path)
    for key in ["a", "c", "b"]:  # b saved last: the latest
        folder = _save(store, key)
        os.utime(folder, (1_000_000 + {"a": 0, "b": 1, "c": 2}[key],) * 2)
    assert store.latest_key("model") == "b"
    assert store.clean(keep=2, current={"model": "a"}) == 1  # b goes: neither current nor newest
    assert store.trace_keys("model") == ["c", "a"]
    assert store.latest_key("model") == "a"


def test_a_lock_taken_but_not_yet_signed_shows_a_question_mark(tmp_path: Path):
    import fcntl

    path = tmp_path / "x.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert locks.holder(path) == "?"
    assert locks.holder(path) is None


def test_an_atomic_write_makes_missing_folders_and_renames_within_one(tmp_path: Path, monkeypatch):
    replaced = []
    real = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: replaced.append((Path(a), Path(b))) or real(a, b)
    )
    path = tmp_path / "a" / "b" / "x.json"
    files.atomic_write_bytes(path, b"{}")
    ((src, dst),) = replaced
    assert dst == path and src.parent == path.parent
    assert src.name.startswith(".x.json.") and src.name.endswith(".tmp")
