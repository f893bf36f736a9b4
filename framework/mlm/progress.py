"""Progress of long work: a live bar with the time left on a terminal, nothing elsewhere.

    with progress.task("writing the trace", total=size) as advance:
        ...              # advance(n) as work gets done, or let `poll` read how far it is

The bar appears only once the work has lasted `DELAY` seconds, so quick steps print
nothing, and it is erased when the work ends (the caller says what was done). When
standard error is not a terminal (a pipe, a log file, CI) nothing is drawn at all: no
bar, no control codes. rich is imported only when a bar is really drawn.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator

DELAY = 1.0  # seconds of work before a bar is drawn
REFRESH = 0.25  # seconds between polls of `poll`


def shown(stream=None) -> bool:
    """Whether progress is drawn: `stream` (standard error) is a terminal that can draw."""
    stream = sys.stderr if stream is None else stream
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


@contextlib.contextmanager
def task(
    description: str,
    total: float | None = None,
    poll: Callable[[], float] | None = None,
    delay: float = DELAY,
) -> Iterator[Callable[..., None]]:
    """Show one piece of work on standard error while the block runs; yields `advance`.

    With a `total`: a bar, the share done and the time left, from `advance(amount)` calls
    or from `poll()`, which returns the amount done so far (a file's size, say) and is
    called a few times a second. Without one: a spinner and the time elapsed.
    """
    if not shown():
        yield _nothing
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        columns += [
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(compact=True),
            TextColumn("left,"),
        ]
    columns += [TimeElapsedColumn(), TextColumn("elapsed")]
    bar = Progress(*columns, console=Console(stderr=True), transient=True)
    ident = bar.add_task(description, total=total)
    done = threading.Event()

    def show() -> None:
        if done.wait(delay):
            return
        bar.start()
        while not done.wait(REFRESH):
            if poll is not None:
                with contextlib.suppress(Exception):  # the thing polled may not exist yet
                    bar.update(ident, completed=poll())

    drawer = threading.Thread(target=show, name="mlm-progress", daemon=True)
    drawer.start()
    try:
        yield lambda amount=1: bar.advance(ident, amount)
    finally:
        done.set()
        drawer.join()
        bar.stop()


def _nothing(amount: float = 1) -> None:
    """advance() when nothing is drawn."""
