"""The data stage: what data.py's load() returns, keyed by the DataFrame's content.

load() is called again only when what it reads changed: data.py's code (and the
project modules it imports) or a file under data/. Otherwise the content hash recorded
at the last load stands for the data.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mlm.fingerprint import code_fingerprints, data_fingerprint, file_digest
from mlm.slots import SLOTS
from mlm.stages.base import Stage, StageStatus, explain
from mlm.stages.validate import check_frame
from mlm.store import Record
from mlm.words import plural

if TYPE_CHECKING:
    from mlm.stages.session import Session


# A file whose status changed this recently before it was hashed may still be changing
# within one tick of the file system's clock (racy git): its stat is not trusted.
SETTLED_NS = 2_000_000_000


def file_stamp(path, seen: list | None) -> list:
    """[size, mtime, ctime, inode, hashed at, content hash] of a data file, hashed only
    when its status moved.

    The status shortcut is safe because the kernel sets ctime on every change to a file's
    content or status and no user call can set it back: `touch -r`, `cp -p`, `rsync -a`
    and `tar x` restore mtime but not ctime (or make a new inode). Only a clock set
    backwards, or a file system without ctime, could hide a change.
    """
    info = path.stat()
    now = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
    if seen and len(seen) == 6 and seen[:4] == now and seen[2] < seen[4] - SETTLED_NS:
        return seen
    return [*now, time.time_ns(), file_digest(path)]


class DataStage(Stage):
    """load()'s DataFrame: loaded at most once per session, its content hash the key."""

    label = "data"

    def __init__(self, session: Session):
        super().__init__()
        self.session = session
        self.layout = session.layout
        self.store = session.layout.store
        self._files: dict[str, list] = {}
        self._content_key = ""

    def record(self) -> Record | None:
        return self.store.read(self.store.paths.data_record)

    def inputs(self) -> dict:
        """What load() reads: data.py's code and the files under data/ (by content)."""

        def compute() -> dict:
            root = self.layout.root
            data_file = root / SLOTS["data"].file
            stamp = dict(code_fingerprints(data_file, root)) if data_file.is_file() else {}
            record = self.record()
            known = record.get("files", {}) if record else {}
            files = {}
            data_dir = self.layout.data_dir
            if data_dir.is_dir():
                for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
                    rel = path.relative_to(root).as_posix()
                    files[rel] = file_stamp(path, known.get(rel))
            stamp.update({rel: entry[-1] for rel, entry in files.items()})
            self._files = files
            return stamp

        return self._once("inputs", compute)

    def key(self) -> str:
        """The data's content hash, read from the record while load()'s inputs are unchanged."""

        def compute() -> str:
            record = self.record()
            if record and record.inputs == self.inputs():
                return record.key
            self.value()
            return self._content_key

        return self._once("key", compute)

    def value(self):
        """The DataFrame load() returns (checked), loaded at most once."""

        def compute():
            slots = self.session.slots
            fn = slots.function("data")
            self.session.progress("data", "loading")
            frame = slots.call("data", fn, self.session.providers("data", None))
            check_frame(frame)
            self._content_key = data_fingerprint(frame)
            return frame

        return self._once("value", compute)

    def preset(self, frame, key: str) -> None:
        """Use a DataFrame loaded by another process (the client of a parallel run, which
        loaded it once for every worker) as this session's data, under its content key."""
        self._memo["value"] = frame
        self._memo["key"] = self._content_key = key

    def loaded(self):
        """The DataFrame if load() ran in this session already, else None."""
        return self._memo.get("value")

    def status(self) -> StageStatus:
        record = self.record()
        stamp = self.inputs()
        if record is None:
            return self.row("missing", "never loaded", self.key())
        if record.inputs == stamp:
            return self.row("fresh", _rows(record.get("rows")), record.key)
        key = self.key()
        moved = explain(stamp, record.inputs)
        if key == record.key:
            return self.row("fresh", f"{moved}; same data", key)
        return self.row("stale", f"data changed ({moved})", key)

    def run(self, force: bool = False) -> StageStatus:
        status = self.status()
        record = self.record()
        if status.fresh and not force:
            if record is not None and (
                record.inputs != self.inputs() or record.get("files") != self._files
            ):
                # data.py or a data file changed but load() gave the same data (or a file
                # was re-hashed): note the new stamps, so that is not redone on every run.
                self.store.write(
                    self.store.paths.data_record,
                    Record(
                        record.key, self.inputs(), details={**record.details, "files": self._files}
                    ),
                )
            return status
        frame = self.value()
        key = self._memo["key"] = self._content_key
        details = {
            "files": self._files,
            "rows": len(frame),
            "columns": [str(c) for c in frame.columns],
        }
        self.store.write(self.store.paths.data_record, Record(key, self.inputs(), details=details))
        self.session.progress(
            "data", f"loaded {plural(len(frame), 'row')} x {plural(frame.shape[1], 'column')}"
        )
        return self.row("fresh", plural(len(frame), "row"), key, ran=True)


def _rows(count) -> str:
    """ "120 rows" ("1 row"; "? rows" in a record without the count)."""
    return plural(count, "row") if isinstance(count, int) else "? rows"
