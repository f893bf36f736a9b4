"""Atomic file writes and tolerant JSON reads: the store's only way to touch the disk."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mlm.errors import MlmError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# mkstemp makes files readable by their owner only; finished files get the usual mode.
FILE_MODE = 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode a folder made by mkdir gets under the current umask (mkdtemp gives 0700)."""
    return 0o777 & ~_umask()


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


def atomic_write_netcdf(path: Path, data, what: str) -> None:
    """Write an xarray object to `path` as NetCDF, atomically as atomic_write_bytes does;
    a failure is one MlmError naming `what` and the folder."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".nc", dir=path.parent)
        os.close(fd)
        data.to_netcdf(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
        tmp = None
    except Exception as exc:
        raise MlmError(f"could not write {what} to {path.parent}: {_reason(exc)}") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict | None:
    """A JSON file's content, or None when it is absent or unreadable (never written)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None
