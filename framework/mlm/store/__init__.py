"""The store under `.mlm/`: plain JSON records and NetCDF traces, written atomically.

Nothing else in mlm writes under `.mlm/`. `paths` says where each thing lives, `records`
what is remembered about a result, `traces` how traces are written and read, `locks`
who may write. All of it is safe to delete; `mlm clean` does.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlm.errors import MlmError
from mlm.store import locks, pointwise, predictions, traces
from mlm.store.files import FILE_MODE, atomic_write_bytes, atomic_write_json, read_json
from mlm.store.paths import (
    CACHE_DIR,
    MANIFEST_FILE,
    QUARANTINE_PREFIX,
    STAGING_PREFIX,
    StorePaths,
)
from mlm.store.records import Record, now
from mlm.store.traces import FORMAT_VERSION, CorruptTrace

__all__ = [
    "CACHE_DIR",
    "FILE_MODE",
    "FORMAT_VERSION",
    "CorruptTrace",
    "Record",
    "Store",
    "StorePaths",
    "atomic_write_bytes",
    "atomic_write_json",
    "now",
    "read_json",
]


class Store:
    """The cache of one project: its records, traces and locks."""

    def __init__(self, root: Path):
        self.paths = StorePaths(root)
        self.dir = self.paths.dir

    # records ----------------------------------------------------------------------------
    def read(self, path: Path) -> Record | None:
        """The record stored at `path` (one of `self.paths`), or None if there is none."""
        return Record.from_json(read_json(path))

    def write(self, path: Path, record: Record) -> None:
        atomic_write_json(path, record.to_json())

    def read_json(self, path: Path) -> dict | None:
        """A plain JSON result (a study replicate), or None if there is none."""
        return read_json(path)

    def write_json(self, path: Path, content: dict) -> None:
        atomic_write_json(path, content)

    # traces -----------------------------------------------------------------------------
    def trace_problem(self, variant: str, key: str) -> str | None:
        """Why the trace under `key` cannot be used ("absent" if none), or None."""
        return traces.problem(self.paths, variant, key)

    def has_trace(self, variant: str, key: str) -> bool:
        """Whether a complete, consistent trace is stored under `key`."""
        return self.trace_problem(variant, key) is None

    def trace_record(self, variant: str, key: str) -> Record | None:
        return self.read(self.paths.trace_manifest(variant, key))

    def trace_dir(self, variant: str, key: str) -> Path:
        return self.paths.trace_dir(variant, key)

    def latest_key(self, variant: str) -> str | None:
        record = read_json(self.paths.latest(variant))
        return record.get("key") if record else None

    def load_trace(self, variant: str, key: str):
        """The trace under `key`, verified against its checksum (CorruptTrace if not)."""
        return traces.load(self.paths, variant, key)

    def verify_trace(self, variant: str, key: str) -> None:
        """Check the trace under `key` against its checksum (CorruptTrace if it fails)."""
        traces.verify(self.paths, variant, key)

    def save_trace(self, variant: str, record: Record, idata) -> Path:
        return traces.save(self.paths, variant, record, idata)

    def trace_keys(self, variant: str) -> list[str]:
        """Stored trace keys of a variant, newest first."""
        return traces.keys(self.paths, variant)

    def variants(self) -> list[str]:
        """The variants with a folder of traces."""
        folder = self.paths.fits
        return sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []

    # draws kept from a fit whose fit.py failed after sampling ------------------------------
    def has_incomplete(self, variant: str, key: str) -> bool:
        return traces.problem(self.paths, variant, key, incomplete=True) is None

    def incomplete_record(self, variant: str, key: str) -> Record | None:
        return self.read(self.paths.incomplete_dir(variant, key) / MANIFEST_FILE)

    def save_incomplete(self, variant: str, record: Record, idata) -> Path:
        return traces.save(self.paths, variant, record, idata, incomplete=True)

    def load_incomplete(self, variant: str, key: str):
        return traces.load(self.paths, variant, key, incomplete=True)

    def drop_incomplete(self, variant: str, key: str) -> None:
        shutil.rmtree(self.paths.incomplete_dir(variant, key), ignore_errors=True)

    # pointwise LOO of traces without a log-likelihood (compare) -------------------------
    def load_pointwise_loo(self, variant: str, key: str):
        """Per row of the trace under `key`: elpd_i, p_loo_i, pareto_k (a Dataset), or None."""
        return pointwise.load(self.paths, variant, key)

    def save_pointwise_loo(self, variant: str, key: str, points) -> Path:
        return pointwise.save(self.paths, variant, key, points)

    # cached predictions (mlm predict) ----------------------------------------------------
    def prediction_record(self, variant: str, key: str) -> Record | None:
        """The record of the predictions cached under `key`, when their draws are intact."""
        return predictions.record(self.paths, variant, key)

    def load_prediction(self, variant: str, key: str):
        """(draws, record) of the predictions cached under `key`, or None."""
        return predictions.load(self.paths, variant, key)

    def save_prediction(self, variant: str, record: Record, draws) -> Path:
        """Cache predictions (an xarray DataArray) under the record's key; the draws' path."""
        return predictions.save(self.paths, variant, record, draws)

    # housekeeping -------------------------------------------------------------------------
    def check_writable(self, variant: str) -> None:
        """Fail now, naming the folder, if a trace of `variant` could not be written."""
        folder = self.paths.fit_dir(variant)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=STAGING_PREFIX) as probe:
                probe.write(b"mlm")
                probe.flush()
        except OSError as exc:
            raise MlmError(
                f"cannot write to {folder}: {exc.strerror or exc}; nothing was sampled (make "
                "the project's .mlm/ folder writable, or free some space)"
            ) from None

    def sweep(self, variant: str) -> None:
        """Remove what killed runs left of `variant`'s traces (half-written folders).

        Called while holding the variant's fit lock, so no live writer owns them."""
        folder = self.paths.fit_dir(variant)
        for leftover in [*folder.glob(f"{STAGING_PREFIX}*"), *folder.glob(".old-*")]:
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def quarantined(self, variant: str) -> list[Path]:
        """Traces of `variant` set aside because they failed their checksum."""
        return sorted(self.paths.fit_dir(variant).glob(f"{QUARANTINE_PREFIX}*"))

    def lock_holder(self, name: str) -> str | None:
        """The pid holding the lock `name` now, or None when it is free."""
        return locks.holder(self.paths.lock(name))

    # locks ------------------------------------------------------------------------------
    @contextmanager
    def lock(
        self, name: str, wait: bool = True, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold `.mlm/locks/NAME.lock`: one writer at a time per name."""
        with locks.hold(self.paths.lock(name), name, wait, on_wait):
            yield

    # cleaning ---------------------------------------------------------------------------
    def clean(self, keep: int | None = None, current: dict[str, str] | None = None) -> int:
        """Drop the cache, or with `keep`, all but `keep` traces of each variant.

        The traces kept are each variant's current one (`current[variant]`, the trace the
        project uses now) and then the newest. Returns how many traces were removed.
        """
        if keep is None:
            removed = sum(len(self.trace_keys(v)) for v in self.variants())
            shutil.rmtree(self.dir, ignore_errors=True)
            return removed
        removed = sum(
            traces.prune(self.paths, v, keep, (current or {}).get(v)) for v in self.variants()
        )
        self._prune_predictions()
        pointwise.prune(self.paths, {v: self.trace_keys(v) for v in self.variants()})
        return removed

    def _prune_predictions(self) -> None:
        """Drop cached predictions whose trace is no longer stored."""
        folder = self.dir / "predict"
        for entry in folder.glob("*/*") if folder.is_dir() else ():
            variant, key = entry.parent.name, entry.name
            record = self.read(self.paths.prediction_manifest(variant, key))
            trace = record.inputs.get("trace") if record else None
            if not (trace and self.has_trace(variant, trace)):
                shutil.rmtree(entry, ignore_errors=True)
