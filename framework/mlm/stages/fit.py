"""The fit stage: fit.py's sample(model), keyed by the model, fit.py, the seed and the
sampler's versions; each trace stored under its key."""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from typing import TYPE_CHECKING, NoReturn

from mlm import compiled, interrupts, progress
from mlm.errors import MlmError
from mlm.fingerprint import code_fingerprints
from mlm.stages.base import SAMPLER_LIBRARIES, Stage, StageStatus, explain, library_versions
from mlm.store import CorruptTrace, Record
from mlm.version import __version__ as MLM_VERSION

if TYPE_CHECKING:
    from mlm.stages.session import Session


class FitStage(Stage):
    """A variant's trace: from the store when its key is there, else sampled and stored."""

    label = "fit"

    def __init__(self, session: Session, variant: str):
        super().__init__()
        self.session = session
        self.variant = variant
        self.store = session.layout.store

    def inputs(self) -> dict:
        def compute() -> dict:
            inputs = dict(self.session.model(self.variant).inputs())
            path = self.session.slots.path("fit")
            inputs.update(code_fingerprints(path, self.session.layout.root))
            inputs["seed"] = self.session.layout.seed
            inputs.update(library_versions(SAMPLER_LIBRARIES))
            return inputs

        return self._once("inputs", compute)

    def record(self) -> Record | None:
        """The manifest of the trace under the current key (None when there is none)."""
        return self.store.trace_record(self.variant, self.key())

    def status(self) -> StageStatus:
        key = self.key()
        problem = self.store.trace_problem(self.variant, key)
        if problem is None:
            record = self.store.trace_record(self.variant, key)
            reason = f"trace of {record.made_at if record else '?'}"
            made_by = record.get("mlm_version") if record else None
            if made_by != MLM_VERSION:
                reason += f" (made by mlm {made_by})"
            return self.row("fresh", reason + self._aside(), key)
        if holder := self.store.lock_holder(f"fit-{self.variant}"):
            return self.row("stale", f"being fitted now by mlm (pid {holder})", key)
        if problem != "absent":
            return self.row("stale", f"cached trace unusable: {problem}{self._aside()}", key)
        if self.store.has_incomplete(self.variant, key):
            record = self.store.incomplete_record(self.variant, key)
            failure = record.get("failure", "fit.py failed") if record else "fit.py failed"
            return self.row(
                "stale",
                f"incomplete: the draws are kept but fit.py failed after sampling ({failure}); "
                "`mlm run fit` finishes it without resampling",
                key,
            )
        latest = self.store.latest_key(self.variant)
        record = self.store.trace_record(self.variant, latest) if latest else None
        if record is None:
            return self.row("missing", "never fitted" + self._aside(), key)
        return self.row("stale", explain(self.inputs(), record.inputs) + self._aside(), key)

    def _aside(self) -> str:
        """A note on traces set aside after failing their checksum, if there are any."""
        found = self.store.quarantined(self.variant)
        if not found:
            return ""
        return (
            f"; {len(found)} corrupt trace(s) set aside ({', '.join(p.name for p in found[:3])}"
            f"{' ...' if len(found) > 3 else ''}; `mlm clean` removes them)"
        )

    def run(self, force: bool = False) -> StageStatus:
        status = self.status()
        if status.fresh and not force:
            return status
        fn = self.session.slots.function("fit")
        waited = []

        def on_wait(pid: str) -> None:
            waited.append(pid)
            self.session.say("fit", f"waiting: mlm (pid {pid}) is fitting this model", self.variant)

        with self.store.lock(f"fit-{self.variant}", wait=self.session.wait, on_wait=on_wait):
            if not force and self.status().fresh:
                reason = (
                    f"fitted meanwhile by mlm (pid {waited[0]}), which this run waited for"
                    if waited
                    else "fitted by another mlm meanwhile"
                )
                self.session.say("fit", reason, self.variant)
                return self.row("fresh", reason, status.key)
            self.store.sweep(self.variant)
            self.store.check_writable(self.variant)
            return self._sample(fn, "forced" if status.fresh else status.reason, force)

    def _sample(self, fn, reason: str, force: bool) -> StageStatus:
        model = self.session.model(self.variant).value()
        key = self.key()
        kept = None
        if not force and self.store.has_incomplete(self.variant, key):
            try:
                kept = self.store.load_incomplete(self.variant, key)
            except CorruptTrace:
                kept = None
        what = "finishing fit.py on the kept draws" if kept is not None else "sampling"
        self.session.say("fit", f"{what} ({reason})", self.variant)
        start = time.perf_counter()
        providers = self.session.providers("fit", self.variant, model=lambda: model)

        def keep(idata, call: str, failure: str) -> None:
            record = Record(key, self.inputs(), details={"sample_call": call, "failure": failure})
            self.store.save_incomplete(self.variant, record, idata)

        capture = _SampleCapture(keep, kept, self.store.incomplete_record(self.variant, key))
        try:
            with (
                _InterruptGuard() as guard,
                compiled.persistent(self.session.layout.config.compile_cache) as compiles,
                # Under the capture, so that the call it records is fit.py's own.
                _pymc_progress_bars(progress.shown()),
                capture.installed(guard),
            ):
                idata = self.session.slots.call("fit", fn, providers)
        except MlmError as exc:
            _keep_draws_and_raise(exc, guard, capture)
        wall = time.perf_counter() - start
        if guard.interrupted:
            # PyMC returns a partial trace on Ctrl-C; it must never be cached as complete.
            raise KeyboardInterrupt
        import xarray as xr

        from mlm.check import measure

        if not isinstance(idata, xr.DataTree) or "posterior" not in idata.children:
            raise MlmError(
                f"fit.py: sample() returned {type(idata).__name__}, expected the trace that "
                "pm.sample returns (an xarray.DataTree with a posterior group)"
            )
        details = {
            "variant": self.variant,
            "seed": self.session.layout.seed,
            "mlm_version": MLM_VERSION,
            "wall_time_s": round(wall, 3),
            "groups": sorted(idata.children),
            "diagnostics": measure(idata),
        }
        try:
            self.store.save_trace(self.variant, Record(key, self.inputs(), details=details), idata)
        except MlmError as exc:
            _keep_draws_and_raise(exc, guard, capture)
        self.store.drop_incomplete(self.variant, key)
        self._memo["value"] = idata
        reused = " (compiled model reused from disk)" if compiles.loaded else ""
        done = "finished on the kept draws" if capture.replayed else f"sampled in {wall:.1f} s"
        self.session.say("fit", f"{done}{reused}; trace cached as {key}", self.variant)
        return self.row("fresh", "sampled", key, ran=True)

    def complete(self) -> bool:
        """Whether the finished trace of the current key is stored."""
        return self.store.has_trace(self.variant, self.key())

    def use_kept_draws(self) -> bool:
        """After a failed run: serve the draws kept from an incomplete fit, if any."""
        kept = self.incomplete()
        if kept is None:
            return False
        self._memo["value"] = kept
        self.session.say(
            "fit", "warning: figures use the kept draws of the incomplete fit", self.variant
        )
        return True

    def incomplete_kept(self) -> bool:
        """Whether draws of an incomplete fit of the current key are kept."""
        return self.store.has_incomplete(self.variant, self.key())

    def incomplete(self):
        """The draws kept from a fit whose fit.py failed after sampling, or None."""
        key = self.key()
        if not self.store.has_incomplete(self.variant, key):
            return None
        try:
            return self.store.load_incomplete(self.variant, key)
        except CorruptTrace:
            return None

    def release(self) -> None:
        """Forget the loaded trace (it is read again from the store when asked for)."""
        self._memo.pop("value", None)

    def value(self):
        """The trace for the current key: from the store when fresh, else sampled now."""
        if "value" not in self._memo:
            key = self.key()
            if not self.store.has_trace(self.variant, key):
                self.run()
            if "value" not in self._memo:
                self.session.say("fit", f"loading cached trace {key}", self.variant)
                try:
                    self._memo["value"] = self.store.load_trace(self.variant, key)
                except CorruptTrace as exc:
                    self.session.say("fit", f"warning: {exc}", self.variant)
                    self.run()
        return self._memo["value"]


class _InterruptGuard:
    """Notice Ctrl-C during sampling: PyMC returns a partial trace then, which must not be
    cached as if complete."""

    def __init__(self):
        self.interrupted = False
        self._previous = None

    def _handle(self, signum, frame):
        self.interrupted = True
        interrupts.handle(signum, frame)

    def __enter__(self):
        # A process started with SIGINT ignored (`mlm run fit &` in a script, or under a
        # parent that means it) keeps ignoring it, as Python and the Dask path do.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            return self
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def __exit__(self, *exc):
        # A Ctrl-C put off while compiled code ran is raised by the caller, which sees
        # `interrupted`, and not again later.
        interrupts.settle()
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _keep_draws_and_raise(exc: MlmError, guard, capture) -> NoReturn:
    """Raise what a failure during or after fit.py means: Ctrl-C stays an interrupt, a
    failure before pm.sample returned stays as it is, and after it the draws are kept."""
    if guard.interrupted:
        raise KeyboardInterrupt from None
    if capture.sampled is None:
        raise exc
    capture.keep_draws(first_line(str(exc)))
    raise MlmError(
        f"{exc}\n  the posterior draws are kept: `mlm run fit` finishes fit.py on them "
        "without resampling (figures can use them meanwhile)"
    ) from exc


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


class _SampleCapture:
    """pymc.sample, watched while fit.py runs.

    As soon as pm.sample returns, its draws are held (a later call's replace them), so
    that a failure later in fit.py (out of memory in the log-likelihood, a full disk) does
    not lose them: they are kept as an incomplete trace. When such draws exist for the
    same key and pm.sample is called with the same arguments, they are returned instead
    of sampling again, and fit.py's remaining steps run on them. A Ctrl-C during sampling
    ends fit.py at once, instead of letting it go on to post-process a partial trace.
    """

    def __init__(self, keep, kept, kept_record):
        self._keep = keep
        self._kept = kept
        self._kept_call = kept_record.get("sample_call") if kept_record else None
        self.sampled = None
        self.call = ""
        self.replayed = False

    @contextlib.contextmanager
    def installed(self, guard):
        import pymc

        real = pymc.sample

        def sample(*args, **kwargs):
            # Every call is watched, and the last one's draws are held: a fit.py may sample
            # again (the template's does, with smaller steps, after divergences).
            call = _describe_call(args, kwargs)
            if self._kept is not None and call == self._kept_call:
                self.replayed = True
                idata = self._kept
            else:
                try:
                    idata = real(*args, **kwargs)
                except Exception:
                    if guard.interrupted:  # nutpie stopped by Ctrl-C before any draw
                        interrupts.settle()
                        raise KeyboardInterrupt from None
                    raise
                if guard.interrupted:
                    interrupts.settle()
                    raise KeyboardInterrupt
            self.sampled, self.call = idata, call
            return idata

        pymc.sample = sample
        try:
            yield self
        finally:
            pymc.sample = real

    def keep_draws(self, failure: str) -> None:
        """Store the held draws as an incomplete trace (best effort: never masks the error)."""
        try:
            self._keep(self.sampled, self.call, failure)
        except Exception:
            pass


# PyMC's steps that draw a progress bar of their own (with the time left) by default.
PYMC_PROGRESS = ("sample", "compute_log_likelihood", "sample_posterior_predictive")


@contextlib.contextmanager
def _pymc_progress_bars(shown: bool):
    """While fit.py runs: PyMC's own progress bars on a terminal, none elsewhere.

    On a terminal pm.sample (nutpie's table), pm.compute_log_likelihood and
    pm.sample_posterior_predictive draw bars with the time left, as fit.py asks by default.
    Elsewhere rich would still print each bar's last state into the log; so there, unless
    fit.py passes `progressbar` itself, these calls get progressbar=False.
    """
    if shown:
        yield
        return
    import pymc

    def quiet(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            kwargs.setdefault("progressbar", False)
            return function(*args, **kwargs)

        return call

    real = {name: getattr(pymc, name) for name in PYMC_PROGRESS}
    for name, function in real.items():
        setattr(pymc, name, quiet(function))
    try:
        yield
    finally:
        for name, function in real.items():
            setattr(pymc, name, function)


def _describe_call(args: tuple, kwargs: dict) -> str:
    """pm.sample's arguments as text (the model aside: the key already holds it)."""
    import pymc

    shown = [repr(a) for a in args if not isinstance(a, pymc.Model)]
    shown += [f"{k}={v!r}" for k, v in sorted(kwargs.items()) if not isinstance(v, pymc.Model)]
    return ", ".join(shown)
