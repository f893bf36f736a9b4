"""Model variants fitted side by side, each on its own Dask worker process.

The client (the process running `mlm run`) loads the data once and hands the DataFrame
to the workers. Each worker opens its own `Session` on the project folder and runs the
variant's fit stage exactly as a run in one process does: the same key, lock, kept draws
of an incomplete fit, and store writes. A trace is written under a temporary name and
renamed into place, and the OS frees the lock of a process that dies, so a worker killed
mid-fit leaves nothing half-written; Dask then runs the fit again on another worker. The
workers therefore need the project at the same path: one machine, or a shared file
system. What a worker says travels back as a Dask event and is shown as the client's own
message, labelled with the variant.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mlm import progress
from mlm.cluster import dask_client, describe
from mlm.errors import MlmError
from mlm.stages.base import StageStatus, explain

if TYPE_CHECKING:
    from mlm.stages.fit import FitStage
    from mlm.stages.session import Session

POLL_S = 0.1  # how often the client looks for finished fits and new messages
# One fit at a time per worker process: a slot call changes the working directory and
# the fit stage wraps pymc.sample, both process-wide (a worker may run several threads).
_WORKER_LOCK = threading.Lock()


def runs_in_parallel(workers: int | None, scheduler: str | None, fits: int) -> bool:
    """Whether `fits` stale fits go to Dask: on a cluster whenever one is named; on local
    workers when there are two or more of each (one fit gains nothing from a cluster)."""
    if scheduler is not None:
        return fits >= 1
    return bool(workers) and workers >= 2 and fits >= 2


def fit_variants(
    session: Session,
    fits: list[tuple[FitStage, bool]],
    workers: int | None,
    scheduler: str | None,
) -> dict[str, StageStatus | MlmError]:
    """Run each (fit stage, force) on Dask; what each variant's fit returned or raised.

    Every fit runs to its end even when another fails, so no finished trace is lost.
    """
    data = session.data()
    frame, data_key = data.value(), data.key()
    root = str(session.layout.root)
    local = None if scheduler is not None else min(workers or 1, len(fits))
    names = ", ".join(fit.variant for fit, _ in fits)
    session.progress("fit", f"{names}: side by side on {describe(local, scheduler)}")
    relay = _Relay(session)
    topic = f"mlm-run-{uuid.uuid4().hex}"
    with dask_client(
        local,
        scheduler,
        "fitting variants side by side runs",
        "drop --workers and --scheduler to fit them one after another",
        quiet=True,
    ) as client:
        client.subscribe_topic(topic, relay.event)
        futures = {}
        with warnings.catch_warnings():
            # The DataFrame travels inside each task (not scattered to one worker, whose
            # death would lose it): Dask warns about a large graph, which is meant here.
            warnings.simplefilter("ignore", UserWarning)
            for fit, force in fits:
                task = client.submit(
                    fit_on_worker,
                    root,
                    fit.variant,
                    fit.inputs(),
                    data_key,
                    frame,
                    force,
                    session.wait,
                    topic,
                    pure=False,
                    key=f"mlm-fit-{fit.variant}-{uuid.uuid4().hex[:8]}",
                )
                futures[task] = fit.variant
        outcomes: dict[str, StageStatus | MlmError] = {}
        # On a terminal, a bar of the fits done, with the time left estimated from them
        # (the workers' own sampling bars stay on the workers).
        label = f"fitting {len(futures)} variants side by side"
        try:
            with progress.task(label, total=len(futures)) as advance:
                while len(outcomes) < len(futures):
                    relay.show()
                    for task, variant in futures.items():
                        if variant not in outcomes and task.done():
                            outcomes[variant] = _outcome(task, variant, relay, session)
                            advance()
                    time.sleep(POLL_S)
        except BaseException:
            client.cancel(list(futures))
            raise
        relay.show()
        client.unsubscribe_topic(topic)
    return outcomes


def _outcome(task, variant: str, relay: _Relay, session: Session) -> StageStatus | MlmError:
    """What a finished task says: its status, or the error to report for its variant."""
    from distributed.scheduler import KilledWorker

    try:
        result = task.result()
    except KilledWorker:
        return MlmError(
            f"{session.layout.model_file(variant)}: the Dask worker fitting it died (killed, "
            "or out of memory) as many times as the scheduler allows; nothing of this fit "
            "was cached, and the other variants' traces are kept. Run `mlm run fit --model "
            f"{variant}` without --workers to fit it here and see what fails"
        )
    except Exception as exc:
        if type(exc).__name__ in ("CancelledError", "FutureCancelledError"):
            return MlmError(
                f"{session.layout.model_file(variant)}: its fit was cancelled by the Dask "
                "cluster (did the scheduler stop?); nothing of it was cached"
            )
        raise
    relay.finish(variant, result["run"], result["messages"])
    if result["error"] is not None:
        return MlmError(result["error"])
    return result["status"]


class _Relay:
    """Workers' messages, shown by the client in the order each worker said them.

    Each message carries its variant, the attempt it belongs to (a fit Dask starts again
    after its worker died is a new attempt) and its place in that attempt. Events may
    arrive late or out of order; a finished task's result carries all of its messages,
    and whatever was not shown yet is shown then.
    """

    def __init__(self, session: Session):
        self.session = session
        self._arrived: list[dict] = []
        self._lock = threading.Lock()
        self._attempt: dict[str, str] = {}
        self._shown: dict[str, int] = {}
        self._done: set[str] = set()

    def event(self, event) -> None:
        """Dask's handler (on its own thread): keep the message for the main thread."""
        _, message = event
        with self._lock:
            self._arrived.append(message)

    def show(self) -> None:
        """Show the messages that arrived (called on the client's main thread)."""
        with self._lock:
            arrived, self._arrived = self._arrived, []
        for message in arrived:
            self._say(message["variant"], message["attempt"], message["index"], message["said"])

    def finish(self, variant: str, attempt: str, messages: list) -> None:
        """Show what the finished attempt said and was not shown yet."""
        for index, said in enumerate(messages):
            self._say(variant, attempt, index, said)
        self._done.add(variant)

    def _say(self, variant: str, attempt: str, index: int, said: list) -> None:
        if variant in self._done:
            return
        if self._attempt.get(variant) != attempt:
            if variant in self._attempt:
                self.session.say(
                    "fit", "the worker fitting it stopped; fitting it again on another", variant
                )
            self._attempt[variant], self._shown[variant] = attempt, 0
        if index == self._shown[variant]:
            self.session.progress(*said)
            self._shown[variant] += 1


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:
        return "(none: called directly)"


def fit_on_worker(
    root: str,
    variant: str,
    inputs: dict,
    data_key: str,
    frame,
    force: bool,
    wait: bool,
    topic: str,
) -> dict:
    """On a Dask worker: run `variant`'s fit stage on the client's data; what it said and
    its status, or its error's message (an error travels back as text: a UserCodeError
    cannot be rebuilt from its message alone)."""
    from mlm.layout import Layout
    from mlm.stages.session import Session

    attempt = uuid.uuid4().hex
    messages: list[list[str]] = []

    def progress(stage: str, message: str) -> None:
        said = [stage, message]
        event = {"variant": variant, "attempt": attempt, "index": len(messages), "said": said}
        messages.append(said)
        with contextlib.suppress(ValueError):  # not on a Dask worker (a direct call)
            from distributed import get_worker

            get_worker().log_event(topic, event)

    result = {"run": attempt, "messages": messages, "status": None, "error": None}
    with _WORKER_LOCK:
        if not (Path(root) / "mlm.toml").is_file():
            result["error"] = (
                f"a Dask worker cannot see the project at {root}: variants fitted on a "
                "cluster need the project folder at the same path on every worker (a shared "
                "file system)"
            )
            return result
        try:
            session = Session(Layout(root), progress, wait)
            session.data().preset(frame, data_key)
            fit = session.fit(variant)
            if fit.inputs() != inputs:
                raise MlmError(
                    f"{session.layout.model_file(variant)}: the Dask worker at "
                    f"{_worker_address()} sees other inputs than mlm run did "
                    f"({explain(fit.inputs(), inputs)}): a file edited while the run "
                    "started, or a worker with other library versions; run again, or "
                    "install the same versions on the workers"
                )
            # Output written straight to the terminal (the samplers' own progress bars)
            # would interleave between workers; the client shows each fit's messages.
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                result["status"] = fit.run(force)
        except MlmError as exc:
            result["error"] = str(exc)
    return result
