"""The one kind of error mlm reports to a user: a message naming the file and function at fault."""

from __future__ import annotations

import traceback
from pathlib import Path


class MlmError(Exception):
    """A problem in a project that the user can fix; the CLI prints it and exits 1."""


class UserCodeError(MlmError):
    """An exception raised inside a slot function, shown with the user's frames only."""

    def __init__(self, where: str, exc: BaseException, root: Path):
        self.where = where
        self.original = exc
        frames = user_frames(exc, root)
        lines = [f"{where} raised {type(exc).__name__}: {exc}"]
        if frames:
            lines.append("Traceback (your code, most recent call last):")
            lines.extend(line.rstrip("\n") for line in traceback.format_list(frames))
        super().__init__("\n".join(lines))


def user_frames(exc: BaseException, root: Path) -> list[traceback.FrameSummary]:
    """The frames of `exc`'s traceback that lie in the project's own files."""
    root = root.resolve()
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if is_project_file(frame.filename, root):
            frames.append(frame)
    return frames


def is_project_file(filename: str | None, root: Path) -> bool:
    """Whether a file is the project's own code (not a library, not a hidden folder's)."""
    if not filename:
        return False
    path = Path(filename)
    if not path.is_absolute():
        return False
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return not any(part.startswith(".") or part == "site-packages" for part in relative.parts)
