"""The watcher's loop: run what is stale, then again after every saved change."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlm.errors import MlmError
from mlm.project import Project
from mlm.watch.state import WatchState

# Folders whose files never make a stage stale (mlm writes the first two itself).
IGNORED = {".mlm", "figures", ".git", ".github", "tests", "templates", "__pycache__"}


def watched(root: Path, path: str) -> bool:
    """Whether a change to `path` can make a stage stale: a Python file of the project
    (slot files, models/, its own modules), a file under data/, or mlm.toml."""
    try:
        relative = Path(path).resolve().relative_to(root)
    except ValueError:
        return False
    parts = relative.parts
    if not parts or any(part in IGNORED or part.startswith(".") for part in parts):
        return False
    if parts[0] == "data":
        return not parts[-1].endswith(("~", ".swp", ".swx", ".tmp"))
    return relative.suffix == ".py" or relative.as_posix() == "mlm.toml"


def run_stale(
    project_root: Path, state: WatchState, say: Callable[[str, str], None], changes: list[str]
) -> None:
    """One run of everything stale; its outcome (or error) and the status go to `state`.
    A failing run keeps the figures of the last good one (mlm never deletes them)."""
    state.update(running=True, changes=changes)
    error = None
    try:
        Project(project_root, progress=say).run()
    except MlmError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # shown on the page; the watcher goes on
        error = f"mlm internal error: {type(exc).__name__}: {exc}"
    rows = None
    try:
        rows = [
            {"stage": r.stage, "variant": r.variant, "state": r.state, "reason": r.reason}
            for r in Project(project_root).status()
        ]
    except MlmError as exc:
        error = error or str(exc)
    except Exception as exc:
        error = error or f"mlm internal error: {type(exc).__name__}: {exc}"
    state.update(
        running=False,
        error=error,
        rows=rows if rows is not None else state.rows,
        finished_at=time.time(),
        runs=state.runs + 1,
    )


def watch(
    root: Path,
    port: int = 0,
    say: Callable[[str, str], None] | None = None,
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serve the page, run what is stale, then rerun after every change until stopped
    (Ctrl-C, or `stop` set)."""
    import watchfiles

    from mlm.watch.server import PageServer

    os.environ.setdefault("MPLBACKEND", "Agg")
    root = Project(root).root.resolve()
    say = say or (lambda stage, message: None)
    state = WatchState(root)
    server = PageServer(state, port)
    server.start()
    stop = stop or threading.Event()
    try:
        announce(f"watching {root}; the page is at {server.url} (Ctrl-C stops)")
        run_stale(root, state, say, [])
        announce("error: " + state.error if state.error else "done: everything is fresh")
        for changes in watchfiles.watch(
            root,
            watch_filter=lambda change, path: watched(root, path),
            stop_event=stop,
            debounce=400,
            raise_interrupt=False,
        ):
            names = sorted({Path(p).resolve().relative_to(root).as_posix() for _, p in changes})
            announce(f"changed: {', '.join(names)}")
            run_stale(root, state, say, names)
            announce("error: " + state.error if state.error else "done: everything is fresh")
    finally:
        server.stop()
