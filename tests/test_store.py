"""Unit tests of the store: records, paths, atomic trace writes, checksums, pruning, locks.

No sampling: the traces are small xarray DataTrees made by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from mlm.errors import MlmError
from mlm.store import CorruptTrace, Record, Store


def _trace(value: float = 0.0) -> xr.DataTree:
    posterior = xr.Dataset({"mu": (("chain", "draw"), np.full((2, 5), value))})
    return xr.DataTree.from_dict({"posterior": posterior})


def _save(store: Store, key: str, value: float = 0.0) -> Path:
    return store.save_trace("model", Record(key, {"seed": 1}, details={"note": "x"}), _trace(value))


def test_a_record_round_trips_through_json_with_one_timestamp():
    record = Record("abc", {"model.py": "f1"}, details={"rows": 3})
    text = json.dumps(record.to_json())
    back = Record.from_json(json.loads(text))
    assert back == record
    assert sorted(record.to_json()) == ["inputs", "key", "made_at", "rows"]


@pytest.mark.parametrize("legacy", ["created_at", "loaded_at", "built_at", "drawn_at"])
def test_records_written_by_an_earlier_mlm_keep_their_time(legacy: str):
    record = Record.from_json({"key": "k", "inputs": {}, legacy: "2026-01-01T00:00:00+00:00"})
    assert record.made_at == "2026-01-01T00:00:00+00:00"
    assert legacy not in record.details


@pytest.mark.parametrize("content", [None, {}, {"inputs": {}}, {"key": 3}])
def test_json_without_a_key_is_no_record(content):
    assert Record.from_json(content) is None


def test_every_path_lies_under_the_cache_folder(tmp_path: Path):
    paths = Store(tmp_path).paths
    made = [
        paths.data_record,
        paths.model_record("m"),
        paths.figure_record("m", "f"),
        paths.compare_record,
        paths.trace_file("m", "k"),
        paths.trace_manifest("m", "k"),
        paths.latest("m"),
        paths.study_point("m", "k"),
        paths.replicate("m", "k", 7),
        paths.lock("fit-m"),
    ]
    assert all(p.is_relative_to(tmp_path / ".mlm") for p in made)
    assert len(set(made)) == len(made)
    assert paths.replicate("m", "k", 7).name == "00007.json"


def test_a_saved_trace_loads_back_and_is_marked_latest(tmp_path: Path):
    store = Store(tmp_path)
    _save(store, "k1", 1.5)
    assert store.has_trace("model", "k1")
    assert store.latest_key("model") == "k1"
    assert float(store.load_trace("model", "k1")["posterior"]["mu"].mean()) == 1.5
    record = store.trace_record("model", "k1")
    assert record.inputs == {"seed": 1} and record.get("note") == "x"
    assert record.get("trace_sha256") and record.get("trace_bytes") > 0
    assert not [p for p in store.paths.fit_dir("model").iterdir() if p.name.startswith(".")]


def test_a_failing_write_leaves_no_trace_folder_behind(tmp_path: Path):
    store = Store(tmp_path)

    class Broken:
        def to_netcdf(self, path):
            Path(path).write_bytes(b"half")
            raise OSError(28, "No space left on device")

    with pytest.raises(MlmError, match="No space left on device"):
        store.save_trace("model", Record("k1"), Broken())
    assert store.trace_problem("model", "k1") == "absent"
    assert list(store.paths.fit_dir("model").iterdir()) == []


@pytest.mark.parametrize("key", ["k1", "k2"], ids=["forced refit of the same key", "a new key"])
def test_a_write_that_fails_half_way_keeps_the_previous_trace_whole(
    tmp_path: Path, monkeypatch, key: str
):
    store = Store(tmp_path)
    folder = _save(store, "k1", 1.5)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = xr.DataTree.to_netcdf

    def half_then_full_disk(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        written = Path(path).read_bytes()
        Path(path).write_bytes(written[: len(written) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", half_then_full_disk)
    with pytest.raises(MlmError, match="No space left on device; earlier traces are intact"):
        store.save_trace("model", Record(key, {"seed": 2}), _trace(9.0))
    monkeypatch.undo()
    # The previous trace: the same bytes, still loadable, still the latest; nothing half-made.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert float(store.load_trace("model", "k1")["posterior"]["mu"].mean()) == 1.5
    assert store.latest_key("model") == "k1"
    assert sorted(p.name for p in store.paths.fit_dir("model").iterdir()) == ["k1", "latest.json"]
    assert store.trace_problem("model", "k2") == "absent"


def test_a_changed_trace_is_quarantined_never_loaded(tmp_path: Path):
    store = Store(tmp_path)
    folder = _save(store, "k1")
    trace = folder / "trace.nc"
    data = bytearray(trace.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the checksum sees it
    trace.write_bytes(bytes(data))
    assert store.has_trace("model", "k1")  # the cheap check passes ...
    with pytest.raises(CorruptTrace):
        store.load_trace("model", "k1")  # ... the checksum does not
    assert store.trace_problem("model", "k1") == "absent"
    folders = [p.name for p in folder.parent.iterdir() if p.is_dir()]
    assert len(folders) == 1 and folders[0].startswith(".corrupt-k1-")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: (f / "trace.nc").write_bytes(b"short"), "truncated or changed"),
        (lambda f: (f / "trace.nc").unlink(), "trace file is missing"),
        (lambda f: (f / "manifest.json").write_text("{"), "manifest is missing or unreadable"),
    ],
)
def test_a_damaged_trace_says_what_is_wrong(tmp_path: Path, change, reason):
    store = Store(tmp_path)
    change(_save(store, "k1"))
    assert reason in store.trace_problem("model", "k1")


def test_pruning_keeps_the_current_trace_then_the_newest(tmp_path: Path):
    store = Store(tmp_path)
    for i, key in enumerate(["old", "current", "newer", "newest"]):
        folder = _save(store, key)
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    (store.paths.fit_dir("model") / ".tmp-left-by-a-kill").mkdir()
    removed = store.clean(keep=2, current={"model": "current"})
    assert removed == 2
    assert sorted(store.trace_keys("model")) == ["current", "newest"]
    assert not list(store.paths.fit_dir("model").glob(".tmp-*"))
    assert store.latest_key("model") == "newest"


def test_a_second_writer_without_waiting_is_told_who_holds_the_lock(tmp_path: Path):
    store = Store(tmp_path)
    with store.lock("fit-model"):
        with pytest.raises(MlmError, match=rf"pid {os.getpid()}"):
            with store.lock("fit-model", wait=False):
                pass
    with store.lock("fit-model", wait=False):  # released: free again
        pass


def test_pruning_drops_predictions_of_traces_that_are_gone(tmp_path: Path):
    store = Store(tmp_path)
    for key in ("kept", "pruned"):
        _save(store, key)
        store.write(
            store.paths.prediction_manifest("model", f"p-{key}"), Record(f"p-{key}", {"trace": key})
        )
    os.utime(store.paths.trace_dir("model", "pruned"), (1, 1))  # the older one goes
    store.clean(keep=1, current={"model": "kept"})
    assert store.paths.prediction_manifest("model", "p-kept").is_file()
    assert not store.paths.prediction_manifest("model", "p-pruned").parent.exists()
