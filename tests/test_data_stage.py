"""The data stage and the stage base, exactly: status rows, records, file stamps.

Mutation testing (docs/testing.md) found these unguarded by the fast tests: what `mlm
status` says for data in each case, what the record holds, and when a data file is hashed
again. Nothing here samples; load() reads a five-line CSV.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from test_stages import DATA, tiny  # noqa: F401  (the fixture)

import mlm.stages.data as data_stage
from mlm.errors import MlmError
from mlm.layout import Layout
from mlm.stages import Session
from mlm.stages.base import StageStatus, library_versions, parse_stage
from mlm.stages.data import SETTLED_NS, file_stamp


def session(root: Path, said: list | None = None) -> Session:
    progress = (lambda stage, message: said.append((stage, message))) if said is not None else None
    return Session(Layout(root), progress) if progress else Session(Layout(root))


def settle(root: Path) -> None:
    """Let the data files' ctime fall 2 s behind now, so their stamps are trusted."""
    old = time.time() - 10
    for path in (root / "data").iterdir():
        os.utime(path, (old, old))
    time.sleep(SETTLED_NS / 1e9 + 0.1)


def test_each_data_status_row_is_exact(tiny: Path):  # noqa: F811
    first = session(tiny).data()
    key = first.key()
    assert first.status() == StageStatus("data", "missing", "never loaded", key)
    said = []
    ran = session(tiny, said).data().run()
    assert ran == StageStatus("data", "fresh", "5 rows", key, ran=True)
    assert said == [("data", "loading"), ("data", "loaded 5 rows x 1 column")]
    assert session(tiny).data().status() == StageStatus("data", "fresh", "5 rows", key)
    # data.py reformatted into other code that loads the same frame: fresh, and why.
    (tiny / "data.py").write_text(DATA.replace("return pd.read_csv", "frame = pd.read_csv"))
    (tiny / "data.py").write_text((tiny / "data.py").read_text() + "    return frame\n")
    assert session(tiny).data().status() == StageStatus(
        "data", "fresh", "data.py changed; same data", key
    )
    # A changed value: stale, naming the file.
    csv = tiny / "data" / "y.csv"
    csv.write_text(csv.read_text().replace("1.2", "1.3"))
    changed = session(tiny).data()
    status = changed.status()
    assert status == StageStatus(
        "data", "stale", "data changed (data.py changed, data/y.csv changed)", changed.key()
    )
    assert status.key != key


def test_the_data_record_holds_rows_columns_and_file_stamps(tiny: Path):  # noqa: F811
    stage = session(tiny).data()
    stage.run()
    record = stage.record()
    assert record.key == stage.key() and record.inputs == stage.inputs()
    assert record.get("rows") == 5 and record.get("columns") == ["y"]
    (stamp,) = record.get("files").values()
    assert list(record.get("files")) == ["data/y.csv"]
    size = (tiny / "data" / "y.csv").stat().st_size
    assert len(stamp) == 6 and stamp[0] == size and stamp[-1] == record.inputs["data/y.csv"]
    assert set(record.inputs) == {"data.py", "data/y.csv"}


def test_after_a_refactor_of_data_py_the_next_run_records_it_and_loads_no_more(tiny: Path):  # noqa: F811
    session(tiny).data().run()
    (tiny / "data.py").write_text(DATA + "\n\nUNUSED = 1\n")
    said = []
    again = session(tiny, said).data()
    assert again.run() == StageStatus("data", "fresh", "data.py changed; same data", again.key())
    assert said == [("data", "loading")]  # loaded once to learn it is the same data ...
    said.clear()
    third = session(tiny, said).data()
    assert third.status() == StageStatus("data", "fresh", "5 rows", again.key())
    assert third.run().ran is False and said == [] and third.loaded() is None  # ... then never


def test_a_settled_unchanged_file_is_not_hashed_again(tiny: Path, monkeypatch):  # noqa: F811
    settle(tiny)
    session(tiny).data().run()
    hashed = []
    real = data_stage.file_digest
    monkeypatch.setattr(data_stage, "file_digest", lambda p: hashed.append(p.name) or real(p))
    assert session(tiny).data().status().fresh
    assert hashed == []
    (tiny / "data" / "y.csv").write_text("y\n0.1\n-0.3\n1.2\n0.4\n0.0\n")  # same bytes, new stat
    assert session(tiny).data().status().fresh
    assert hashed == ["y.csv"]


def test_file_stamp_trusts_a_stat_only_when_it_matches_and_has_settled(tmp_path: Path, monkeypatch):
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    info = path.stat()
    now = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
    calls = []
    monkeypatch.setattr(data_stage, "file_digest", lambda p: calls.append(1) or "hash")
    settled = [*now, info.st_ctime_ns + SETTLED_NS + 1, "old hash"]
    assert file_stamp(path, settled) is settled and calls == []
    for seen in (
        None,
        [],
        [*now, info.st_ctime_ns + SETTLED_NS, "old hash"],  # exactly 2 s: not yet trusted
        [*now, info.st_ctime_ns, "old hash"],  # hashed while it may still have been changing
        [now[0] + 1, *now[1:], info.st_ctime_ns + SETTLED_NS + 1, "old hash"],  # size moved
        [now[0], now[1], now[2], now[3] + 1, info.st_ctime_ns + SETTLED_NS + 1, "x"],  # inode
        [*now, info.st_ctime_ns + SETTLED_NS + 1, "old hash", "extra"],  # not a stamp
    ):
        calls.clear()
        stamp = file_stamp(path, seen)
        assert calls == [1] and stamp[:4] == now and stamp[-1] == "hash", seen
        assert stamp[4] >= info.st_ctime_ns


def test_loaded_is_the_frame_only_once_load_ran(tiny: Path):  # noqa: F811
    stage = session(tiny).data()
    assert stage.loaded() is None
    frame = stage.value()
    assert stage.loaded() is frame and stage.value() is frame
    assert list(frame["y"]) == [0.1, -0.3, 1.2, 0.4, 0.0]


def test_a_project_without_data_files_is_keyed_by_data_py_alone(tiny: Path):  # noqa: F811
    (tiny / "data" / "y.csv").unlink()
    (tiny / "data.py").write_text(
        "import pandas as pd\n\n\ndef load():\n    return pd.DataFrame({'y': [1.0, 2.0]})\n"
    )
    stage = session(tiny).data()
    assert set(stage.inputs()) == {"data.py"}
    assert stage.run().reason == "2 rows"


# the stage base ---------------------------------------------------------------------------
def test_a_stage_row_carries_its_variant_and_whether_it_ran(tiny: Path):  # noqa: F811
    fit = session(tiny).fit("model")
    row = fit.row("stale", "why", "k", ran=True)
    assert row == StageStatus("fit", "stale", "why", "k", True, "model")
    assert not row.fresh and StageStatus("fit", "fresh", "", None).fresh


def test_a_stage_key_is_computed_once_from_its_inputs(tiny: Path, monkeypatch):  # noqa: F811
    model = session(tiny).model("model")
    calls = []
    real = type(model).inputs
    monkeypatch.setattr(type(model), "inputs", lambda self: calls.append(1) or real(self))
    assert model.key() == model.key() and len(model.key()) == 16
    assert calls == [1]


def test_an_unknown_stage_is_refused_with_the_choices():
    with pytest.raises(MlmError) as caught:
        parse_stage("graphic")
    assert str(caught.value) == (
        "unknown stage 'graphic' (did you mean 'graphics'?); the stages are data, model, fit, "
        "graphics, compare (graphics:NAME for one figure; `mlm study` for a simulation study)"
    )


def test_library_versions_say_absent_for_a_missing_library():
    versions = library_versions(("pytest", "no-such-library-mlm"))
    assert versions["no-such-library-mlm version"] == "absent"
    assert versions["pytest version"] == pytest.__version__


def test_settled_stamps_are_recorded_once_and_then_nothing_is_written(
    tiny: Path,  # noqa: F811
    monkeypatch,
):
    settle(tiny)
    session(tiny).data().run()
    record_file = session(tiny).layout.store.paths.data_record
    written = record_file.stat().st_mtime_ns
    # Unchanged and settled: a run writes nothing and hashes nothing.
    hashed = []
    real = data_stage.file_digest
    monkeypatch.setattr(data_stage, "file_digest", lambda p: hashed.append(p.name) or real(p))
    assert session(tiny).data().run().ran is False
    assert record_file.stat().st_mtime_ns == written and hashed == []
    # The file touched (same bytes): hashed again once, its new stamp recorded ...
    csv = tiny / "data" / "y.csv"
    csv.write_bytes(csv.read_bytes())
    settle(tiny)
    assert session(tiny).data().run().ran is False
    assert hashed == ["y.csv"] and record_file.stat().st_mtime_ns != written
    # ... so the next run hashes nothing.
    hashed.clear()
    assert session(tiny).data().status().fresh and hashed == []
    # data.py refactored, same data: recorded once, then status needs no load.
    (tiny / "data.py").write_text(DATA + "\n\nUNUSED = 1\n")
    assert session(tiny).data().run().reason == "data.py changed; same data"
    third = session(tiny).data()
    assert third.status().reason == "5 rows" and third.loaded() is None


def test_a_record_of_an_older_mlm_without_files_or_rows_still_answers(tiny: Path):  # noqa: F811
    from mlm.store import Record

    stage = session(tiny).data()
    stage.run()
    store = stage.store
    record = stage.record()
    store.write(store.paths.data_record, Record(record.key, record.inputs))
    again = session(tiny).data()
    assert again.status() == StageStatus("data", "fresh", "? rows", record.key)
