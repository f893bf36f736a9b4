"""The fit stage: fit.py's sample(model), keyed by the model, fit.py, the seed and the
sampler's versions; each trace stored under its key."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

from mlm import compiled
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
            return self.row("fresh", reason, key)
        if problem != "absent":
            return self.row("stale", f"cached trace unusable: {problem}", key)
        latest = self.store.latest_key(self.variant)
        record = self.store.trace_record(self.variant, latest) if latest else None
        if record is None:
            return self.row("missing", "never fitted", key)
        return self.row("stale", explain(self.inputs(), record.inputs), key)

    def run(self, force: bool = False) -> StageStatus:
        status = self.status()
        if status.fresh and not force:
            return status
        fn = self.session.slots.function("fit")
        with self.store.lock(
            f"fit-{self.variant}",
            wait=self.session.wait,
            on_wait=lambda pid: self.session.say(
                "fit", f"waiting: mlm (pid {pid}) is fitting this model", self.variant
            ),
        ):
            if not force and self.status().fresh:
                return self.row("fresh", "fitted by another mlm meanwhile", status.key)
            return self._sample(fn, "forced" if status.fresh else status.reason)

    def _sample(self, fn, reason: str) -> StageStatus:
        model = self.session.model(self.variant).value()
        self.session.say("fit", f"sampling ({reason})", self.variant)
        start = time.perf_counter()
        providers = self.session.providers("fit", self.variant, model=lambda: model)
        with (
            _InterruptGuard() as guard,
            compiled.persistent(self.session.layout.config.compile_cache) as compiles,
        ):
            idata = self.session.slots.call("fit", fn, providers)
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
        key = self.key()
        details = {
            "variant": self.variant,
            "seed": self.session.layout.seed,
            "mlm_version": MLM_VERSION,
            "wall_time_s": round(wall, 3),
            "groups": sorted(idata.children),
            "diagnostics": measure(idata),
        }
        self.store.save_trace(self.variant, Record(key, self.inputs(), details=details), idata)
        self._memo["value"] = idata
        reused = " (compiled model reused from disk)" if compiles.loaded else ""
        self.session.say(
            "fit", f"sampled in {wall:.1f} s{reused}; trace cached as {key}", self.variant
        )
        return self.row("fresh", "sampled", key, ran=True)

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
        signal.default_int_handler(signum, frame)

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
