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

import json
import os
import shutil
import tempfile
from pathlib import Path

CACHE_DIR = ".mlm"


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
        folder = self.trace_dir(variant, key)
        return (folder / TRACE_FILE).is_file() and (folder / MANIFEST_FILE).is_file()

    def trace_manifest(self, variant: str, key: str) -> dict | None:
        return read_json(self.trace_dir(variant, key) / MANIFEST_FILE)

    def latest_key(self, variant: str) -> str | None:
        record = read_json(self.fit_dir(variant) / "latest.json")
        return record.get("key") if record else None

    def load_trace(self, variant: str, key: str):
        """The trace stored under `key`, read fully into memory (the file stays closed)."""
        import xarray as xr

        return xr.load_datatree(self.trace_dir(variant, key) / TRACE_FILE)

    def save_trace(self, variant: str, key: str, idata, manifest: dict) -> Path:
        """Store a trace and its manifest under `key`, atomically, and mark it latest."""
        final = self.trace_dir(variant, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=final.parent))
        try:
            idata.to_netcdf(staging / TRACE_FILE)
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
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        atomic_write_json(self.fit_dir(variant) / "latest.json", {"key": key})
        return final

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
