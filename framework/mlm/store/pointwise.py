"""Cached pointwise LOO: per row of a trace, its elpd, p_loo and Pareto k (NetCDF).

A trace that stores no log-likelihood has its LOO computed by the compare stage, which
takes minutes at a million rows; the result (three numbers and a label per row, 32 MB
for a million) is kept here by the trace's key, so a comparison rerun after another
variant changed does not compute it again. Written under a temporary name and renamed into place; a
file that cannot be read is treated as absent and recomputed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlm.store.files import atomic_write_netcdf
from mlm.store.paths import StorePaths


def load(paths: StorePaths, variant: str, key: str):
    """The pointwise LOO (an xarray Dataset) of the trace under `key`, or None."""
    import xarray as xr

    path = paths.pointwise_loo(variant, key)
    if not path.is_file():
        return None
    try:
        return xr.load_dataset(path)
    except (OSError, ValueError, RuntimeError):
        return None


def save(paths: StorePaths, variant: str, key: str, points) -> Path:
    """Store the pointwise LOO of the trace under `key`, atomically."""
    target = paths.pointwise_loo(variant, key)
    atomic_write_netcdf(target, points, "the pointwise LOO")
    return target


def prune(paths: StorePaths, stored: dict[str, list[str]]) -> None:
    """Drop the pointwise LOO of traces no longer stored (`stored`: variant -> keys)."""
    folder = paths.dir / "loo"
    for entry in folder.glob("*/*.nc") if folder.is_dir() else ():
        if entry.stem not in stored.get(entry.parent.name, []):
            entry.unlink(missing_ok=True)
    for variant in folder.iterdir() if folder.is_dir() else ():
        if variant.is_dir() and not any(variant.iterdir()):
            shutil.rmtree(variant, ignore_errors=True)
