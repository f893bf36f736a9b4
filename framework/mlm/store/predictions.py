"""Cached predictions on disk: one folder per key, the draws as NetCDF and a manifest.

The draws are written under a temporary name and renamed into place, then the manifest
(holding their size and checksum) is written: a manifest is only ever beside the draws it
describes, and draws whose bytes no longer match it are ignored (recomputed), never read.
"""

from __future__ import annotations

from pathlib import Path

from mlm.errors import MlmError
from mlm.fingerprint import file_digest
from mlm.store.files import atomic_write_json, atomic_write_netcdf, read_json
from mlm.store.paths import StorePaths
from mlm.store.records import Record


def record(paths: StorePaths, variant: str, key: str) -> Record | None:
    """The manifest of the predictions under `key`, when their draws are intact."""
    manifest = read_json(paths.prediction_manifest(variant, key))
    found = Record.from_json(manifest)
    if found is None or found.key != key:
        return None
    draws = paths.prediction_draws(variant, key)
    try:
        size = draws.stat().st_size
    except OSError:
        return None
    if size != found.get("draws_bytes"):
        return None
    return found


def load(paths: StorePaths, variant: str, key: str):
    """The cached draws (an xarray DataArray) and their record, or None when there are none
    (or their bytes do not match the manifest's checksum)."""
    import xarray as xr

    found = record(paths, variant, key)
    if found is None:
        return None
    draws = paths.prediction_draws(variant, key)
    if file_digest(draws) != found.get("draws_sha256"):
        return None
    return xr.load_dataarray(draws), found


def save(paths: StorePaths, variant: str, made: Record, draws) -> Path:
    """Store predictions (a DataArray) and their record under the record's key, atomically."""
    target = paths.prediction_draws(variant, made.key)
    atomic_write_netcdf(target, draws, "the predictions")
    try:
        made = made.with_details(
            draws_bytes=target.stat().st_size, draws_sha256=file_digest(target)
        )
        atomic_write_json(paths.prediction_manifest(variant, made.key), made.to_json())
    except OSError as exc:
        raise MlmError(
            f"could not write the predictions to {target.parent}: {exc.strerror or exc}"
        ) from exc
    return target
