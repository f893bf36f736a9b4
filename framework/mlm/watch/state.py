"""What the watcher's runs and its web page share: the last status, figures and error."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

FIGURE_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".pdf": "application/pdf",
}


@dataclass
class WatchState:
    """The last run's outcome, guarded by one condition that wakes the page's listeners."""

    root: Path
    generation: int = 0  # bumped when a run starts or ends
    running: bool = False
    error: str | None = None
    rows: list[dict] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    finished_at: float | None = None
    runs: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def update(self, **values) -> None:
        with self.lock:
            for name, value in values.items():
                setattr(self, name, value)
            self.generation += 1
            self.lock.notify_all()

    def wait(self, generation: int, timeout: float) -> int:
        """Block until the generation differs from `generation` (or `timeout`); the current."""
        with self.lock:
            self.lock.wait_for(lambda: self.generation != generation, timeout)
            return self.generation

    def figures(self) -> list[dict]:
        """Every drawn figure under figures/: its path there and a version for caches."""
        folder = self.root / "figures"
        found = []
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix.lower() in FIGURE_TYPES:
                    if path.name.startswith("."):
                        continue  # a figure being written
                    relative = path.relative_to(folder).as_posix()
                    found.append({"path": relative, "version": path.stat().st_mtime_ns})
        return found

    def snapshot(self) -> dict:
        """The page's status JSON."""
        with self.lock:
            content = {
                "generation": self.generation,
                "running": self.running,
                "error": self.error,
                "status": list(self.rows),
                "changes": list(self.changes),
                "runs": self.runs,
                "finished_at": (
                    time.strftime("%H:%M:%S", time.localtime(self.finished_at))
                    if self.finished_at
                    else None
                ),
            }
        content["figures"] = self.figures()
        return content
