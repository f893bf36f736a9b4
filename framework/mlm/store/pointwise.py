"""Cached pointwise LOO: per row of a trace, its elpd, p_loo and Pareto k (NetCDF).

A trace that stores no log-likelihood has its LOO computed by the compare stage, which
takes minutes at a million rows; the result (three numbers and a label per row, 32 MB
for a million) is kept here by the trace's key, so a comparison rerun after another
variant changed does not compute it again. Written under a temporary name and renamed into place; a
file that cannot be read is treated as absent and recomputed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mlm.errors import MlmError
from mlm.store.files import FILE_MODE
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
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".nc", dir=target.parent)
        os.close(fd)
        points.to_netcdf(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
        tmp = None
    except Exception as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
        raise MlmError(
            f"could not write the pointwise LOO to {target.parent}: "
            f"{detail or f'{type(exc).__name__}: {exc}'}"
        ) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
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
