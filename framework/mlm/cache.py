"""The store under `.mlm/`: plain JSON manifests and NetCDF traces, written atomically.

Layout (all of it safe to delete; `mlm clean` does):

    .mlm/data.json                      the last loaded data: key, stamps of its inputs
    .mlm/model/<variant>.json           the last built model: key, inputs, variables
    .mlm/fit/<variant>/<key>/trace.nc   a trace, by key (content-addressed run-cache)
    .mlm/fit/<variant>/<key>/manifest.json
    .mlm/fit/<variant>/latest.json      which key was fitted last (to explain staleness)
    .mlm/graphics/<variant>/<figure>.json   the key each figure was last drawn with
    .mlm/compare/<key>.json             a LOO comparison of the variants' traces

A trace directory appears complete or not at all: it is written under a temporary name
and renamed into place, so a fit killed half-way leaves every earlier trace intact.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlm.errors import MlmError
from mlm.fingerprint import file_digest

CACHE_DIR = ".mlm"
# Bumped when the layout or the manifest's meaning changes; other formats are stale.
FORMAT_VERSION = 1


class CorruptTrace(MlmError):
    """A stored trace whose bytes no longer match the checksum in its manifest."""


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# mkstemp makes files readable by their owner only; finished files get the usual mode.
FILE_MODE = 0o666 & ~_umask()
TRACE_FILE = "trace.nc"
MANIFEST_FILE = "manifest.json"


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write `payload` to `path` so readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict | None:
    """A manifest, or None when it is absent or unreadable (treated as never written)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class Store:
    """The cache of one project."""

    def __init__(self, root: Path):
        self.dir = root / CACHE_DIR

    # data and model records -------------------------------------------------------------
    @property
    def data_record_path(self) -> Path:
        return self.dir / "data.json"

    def model_record_path(self, variant: str) -> Path:
        return self.dir / "model" / f"{variant}.json"

    def figure_record_path(self, variant: str, name: str) -> Path:
        return self.dir / "graphics" / variant / f"{name}.json"

    # traces -----------------------------------------------------------------------------
    def fit_dir(self, variant: str) -> Path:
        return self.dir / "fit" / variant

    def trace_dir(self, variant: str, key: str) -> Path:
        return self.fit_dir(variant) / key

    def has_trace(self, variant: str, key: str) -> bool:
        """Whether a complete, consistent trace is stored under `key`."""
        return self.trace_problem(variant, key) is None

    def trace_problem(self, variant: str, key: str) -> str | None:
        """Why the trace under `key` cannot be used ("absent" if there is none), or None.

        Cheap checks only (the manifest and the file's size); the full checksum is
        verified when the trace is loaded.
        """
        folder = self.trace_dir(variant, key)
        if not (folder / MANIFEST_FILE).is_file() and not (folder / TRACE_FILE).is_file():
            return "absent"
        manifest = read_json(folder / MANIFEST_FILE)
        if manifest is None:
            return "its manifest is missing or unreadable"
        if manifest.get("format") != FORMAT_VERSION:
            return f"cache format {manifest.get('format')} (this mlm reads {FORMAT_VERSION})"
        if manifest.get("key") != key:
            return f"its manifest is for key {manifest.get('key')}"
        try:
            size = (folder / TRACE_FILE).stat().st_size
        except OSError:
            return "its trace file is missing"
        if size != manifest.get("trace_bytes"):
            return "its trace file is truncated or changed (size differs from the manifest)"
        return None

    def trace_manifest(self, variant: str, key: str) -> dict | None:
        return read_json(self.trace_dir(variant, key) / MANIFEST_FILE)

    def latest_key(self, variant: str) -> str | None:
        record = read_json(self.fit_dir(variant) / "latest.json")
        return record.get("key") if record else None

    def load_trace(self, variant: str, key: str):
        """The trace stored under `key`, checked against its checksum and read fully into
        memory (the file is closed afterwards). A corrupt trace is moved aside, never loaded.
        """
        import xarray as xr

        folder = self.trace_dir(variant, key)
        manifest = read_json(folder / MANIFEST_FILE) or {}
        if file_digest(folder / TRACE_FILE) != manifest.get("trace_sha256"):
            quarantine = folder.with_name(f".corrupt-{key}-{int(time.time())}")
            os.replace(folder, quarantine)
            raise CorruptTrace(
                f"the cached trace {folder} does not match its checksum (corrupted or "
                f"truncated); moved it to {quarantine.name} and it will be refitted"
            )
        return xr.load_datatree(folder / TRACE_FILE)

    def save_trace(self, variant: str, key: str, idata, manifest: dict) -> Path:
        """Store a trace and its manifest under `key`, atomically, and mark it latest."""
        final = self.trace_dir(variant, key)
        staging = final.parent / f".tmp-{key}-unmade"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=final.parent))
            idata.to_netcdf(staging / TRACE_FILE)
            with open(staging / TRACE_FILE, "rb") as handle:
                os.fsync(handle.fileno())
            manifest = {
                **manifest,
                "format": FORMAT_VERSION,
                "trace_bytes": (staging / TRACE_FILE).stat().st_size,
                "trace_sha256": file_digest(staging / TRACE_FILE),
            }
            atomic_write_json(staging / MANIFEST_FILE, manifest)
            if final.exists():
                # A forced refit of the same key: move the old one aside, never write into it
                # (it may be open lazily elsewhere).
                retired = Path(tempfile.mkdtemp(prefix=f".old-{key}-", dir=final.parent))
                os.replace(final, retired / key)
                os.replace(staging, final)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, final)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise MlmError(
                f"could not write the trace to {final.parent}: {exc.strerror or exc}; "
                "earlier traces are intact"
            ) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        atomic_write_json(self.fit_dir(variant) / "latest.json", {"key": key})
        return final

    @contextmanager
    def lock(
        self, name: str, wait: bool = True, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold `.mlm/locks/NAME.lock` exclusively: one writer at a time per name.

        A second holder waits (after calling `on_wait` with the holder's pid) or, with
        `wait=False`, fails at once. The OS releases the lock if its process dies.
        """
        path = self.dir / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                handle.seek(0)
                holder = handle.read().strip() or "?"
                if not wait:
                    raise MlmError(
                        f"another mlm process (pid {holder}) is writing {name} in this "
                        "project; try again when it is done (or drop --no-wait to wait)"
                    ) from None
                if on_wait:
                    on_wait(holder)
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def trace_keys(self, variant: str) -> list[str]:
        """Stored trace keys of a variant, newest first."""
        folder = self.fit_dir(variant)
        if not folder.is_dir():
            return []
        found = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        found = [d for d in found if (d / MANIFEST_FILE).is_file()]
        return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)]

    def variants(self) -> list[str]:
        folder = self.dir / "fit"
        return sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []

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
        removed = 0
        for variant in self.variants():
            keys = self.trace_keys(variant)
            mine = (current or {}).get(variant)
            ordered = ([mine] if mine in keys else []) + [k for k in keys if k != mine]
            kept = ordered[:keep]
            for key in ordered[keep:]:
                shutil.rmtree(self.trace_dir(variant, key), ignore_errors=True)
                removed += 1
            for leftover in self.fit_dir(variant).glob(".tmp-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            latest = self.fit_dir(variant) / "latest.json"
            if kept and self.latest_key(variant) not in kept:
                atomic_write_json(latest, {"key": kept[0]})
            elif not kept:
                latest.unlink(missing_ok=True)
        return removed
