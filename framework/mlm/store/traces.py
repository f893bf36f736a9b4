"""Traces on disk: written whole or not at all, checked against their checksum when read.

A trace folder (`trace.nc` and its manifest) is written under a temporary name and
renamed into place, so a fit killed half-way leaves every earlier trace intact. A trace
whose bytes no longer match its manifest's checksum is moved aside (quarantined), never
loaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlm.errors import MlmError
from mlm.fingerprint import file_digest
from mlm.progress import task
from mlm.store.files import atomic_write_json, dir_mode, read_json
from mlm.store.paths import (
    MANIFEST_FILE,
    QUARANTINE_PREFIX,
    STAGING_PREFIX,
    TRACE_FILE,
    StorePaths,
)
from mlm.store.records import Record

# A trace replaced by a forced refit of its key, removed once the new one is in place.
RETIRED_PREFIX = ".old-"

# Bumped when the layout or the manifest's meaning changes; other formats are stale.
FORMAT_VERSION = 1


class CorruptTrace(MlmError):
    """A stored trace whose bytes no longer match the checksum in its manifest."""


def _folder(paths: StorePaths, variant: str, key: str, incomplete: bool) -> Path:
    return (paths.incomplete_dir if incomplete else paths.trace_dir)(variant, key)


def problem(paths: StorePaths, variant: str, key: str, incomplete: bool = False) -> str | None:
    """Why the trace under `key` cannot be used ("absent" if there is none), or None.

    Cheap checks only (the manifest and the file's size); the full checksum is verified
    when the trace is loaded. `incomplete`: the draws kept from a fit whose fit.py failed
    after sampling, instead of the finished trace.
    """
    folder = _folder(paths, variant, key, incomplete)
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


def verify(paths: StorePaths, variant: str, key: str, incomplete: bool = False) -> Path:
    """The trace file under `key` once its bytes match its manifest's checksum; a trace
    that does not is moved aside (CorruptTrace), never used."""
    folder = _folder(paths, variant, key, incomplete)
    manifest = read_json(folder / MANIFEST_FILE) or {}
    if file_digest(folder / TRACE_FILE) != manifest.get("trace_sha256"):
        quarantine = folder.with_name(f"{QUARANTINE_PREFIX}{key}-{int(time.time())}")
        os.replace(folder, quarantine)
        raise CorruptTrace(
            f"the cached trace {folder} does not match its checksum (corrupted or "
            f"truncated); moved it to {quarantine.name} and it will be refitted"
        )
    return folder / TRACE_FILE


def load(paths: StorePaths, variant: str, key: str, incomplete: bool = False):
    """The trace stored under `key`, checked against its checksum and read fully into
    memory (the file is closed afterwards). A corrupt trace is moved aside, never loaded.
    """
    import xarray as xr

    return xr.load_datatree(verify(paths, variant, key, incomplete))


def save(paths: StorePaths, variant: str, record: Record, idata, incomplete: bool = False) -> Path:
    """Store a trace and its record under the record's key, atomically; mark it latest
    (an `incomplete` one is kept beside the finished traces, and never marked latest)."""
    key = record.key
    final = _folder(paths, variant, key, incomplete)
    staging = final.parent / f"{STAGING_PREFIX}{key}-unmade"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{key}-", dir=final.parent))
        written = staging / TRACE_FILE
        # About the file's size, since the draws are stored uncompressed.
        size = getattr(idata, "nbytes", None)
        what = f"writing the trace ({size / 1e6:,.0f} MB)" if size else "writing the trace"
        with task(what, total=size, poll=lambda: written.stat().st_size):
            idata.to_netcdf(written)
            with open(written, "rb") as handle:
                os.fsync(handle.fileno())
        with task("checking the trace's checksum"):
            checksum = file_digest(written)
        record = record.with_details(
            format=FORMAT_VERSION,
            trace_bytes=written.stat().st_size,
            trace_sha256=checksum,
        )
        atomic_write_json(staging / MANIFEST_FILE, record.to_json())
        os.chmod(staging, dir_mode())  # mkdtemp's 0700 would hide the trace from the group
        if final.exists():
            # A forced refit of the same key: move the old one aside, never write into it
            # (it may be open lazily elsewhere).
            retired = Path(tempfile.mkdtemp(prefix=f"{RETIRED_PREFIX}{key}-", dir=final.parent))
            os.replace(final, retired / key)
            os.replace(staging, final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, final)
    except Exception as exc:
        # Disk full shows up as OSError, or as h5py's RuntimeError (or another type) while
        # netCDF closes the file: either way an ordinary fault, not a bug of mlm's.
        shutil.rmtree(staging, ignore_errors=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
        raise MlmError(
            f"could not write the trace to {final.parent}: "
            f"{detail or f'{type(exc).__name__}: {exc}'}; earlier traces are intact"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not incomplete:
        atomic_write_json(paths.latest(variant), {"key": key})
    return final


def keys(paths: StorePaths, variant: str) -> list[str]:
    """Stored trace keys of a variant, newest first."""
    folder = paths.fit_dir(variant)
    if not folder.is_dir():
        return []
    found = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    found = [d for d in found if (d / MANIFEST_FILE).is_file()]
    return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)]


LEFTOVER_PREFIXES = (STAGING_PREFIX, QUARANTINE_PREFIX, RETIRED_PREFIX)


def leftovers(paths: StorePaths, variant: str) -> list[Path]:
    """Folders of `variant` that hold no usable trace: half-written (`.tmp-*`, left by a
    killed run), quarantined (`.corrupt-*`) or retired by a forced refit (`.old-*`)."""
    folder = paths.fit_dir(variant)
    if not folder.is_dir():
        return []
    return sorted(
        d for d in folder.iterdir() if d.is_dir() and d.name.startswith(LEFTOVER_PREFIXES)
    )


@dataclass(frozen=True)
class Removal:
    """What a clean would remove: complete traces, and folders holding no usable trace."""

    traces: list[Path]
    leftovers: list[Path]
    everything: bool  # the whole cache (`mlm clean` without --keep)

    def __bool__(self) -> bool:
        return bool(self.traces or self.leftovers)


def _pruned(paths: StorePaths, variant: str, keep: int, current: str | None) -> list[str]:
    """The keys `prune` removes: all but `keep`, the current one kept first, then the newest."""
    stored = keys(paths, variant)
    ordered = ([current] if current in stored else []) + [k for k in stored if k != current]
    return ordered[keep:]


def removal(
    paths: StorePaths,
    variants: list[str],
    keep: int | None = None,
    current: dict[str, str] | None = None,
) -> Removal:
    """What `mlm clean` (keep None: the whole cache) or `mlm clean --keep N` would remove
    from `variants`' traces, given each variant's `current` key; removes nothing."""
    doomed, other = [], []
    for variant in variants:
        if keep is None:
            doomed += [paths.trace_dir(variant, k) for k in keys(paths, variant)]
        else:
            chosen = _pruned(paths, variant, keep, (current or {}).get(variant))
            doomed += [paths.trace_dir(variant, k) for k in chosen]
        other += leftovers(paths, variant)
    return Removal(doomed, other, keep is None)


def prune(paths: StorePaths, variant: str, keep: int, current: str | None) -> int:
    """Remove all but `keep` traces of `variant` (its current one first, then the newest),
    and every folder holding no usable trace (half-written, quarantined or retired);
    returns how many traces went."""
    doomed = _pruned(paths, variant, keep, current)
    for key in doomed:
        shutil.rmtree(paths.trace_dir(variant, key), ignore_errors=True)
    for leftover in leftovers(paths, variant):
        shutil.rmtree(leftover, ignore_errors=True)
    kept = keys(paths, variant)
    latest = read_json(paths.latest(variant)) or {}
    if kept and latest.get("key") not in kept:
        newest = [k for k in kept if k == current] or kept
        atomic_write_json(paths.latest(variant), {"key": newest[0]})
    elif not kept:
        paths.latest(variant).unlink(missing_ok=True)
    return len(doomed)
