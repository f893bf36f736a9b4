"""The stages data -> model -> fit -> graphics: their keys, their state and running them.

Each stage's key is a hash of a flat dict of its inputs (code fingerprints per file, the
data's content hash, library versions, the seed). The same dict is stored in the stage's
manifest, so `mlm status` explains staleness by comparing the two: "model.py changed",
"data changed", "pymc version changed".
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlm import __version__ as MLM_VERSION
from mlm import compiled
from mlm.cache import FILE_MODE, CorruptTrace, atomic_write_json, read_json
from mlm.errors import MlmError, UserCodeError
from mlm.fingerprint import (
    FigureFunction,
    code_fingerprints,
    data_fingerprint,
    digest,
    figure_functions,
    file_digest,
)
from mlm.slots import (
    SLOT_FILES,
    SLOT_FUNCTIONS,
    SLOT_PARAMS,
    SLOT_PURPOSE,
    SlotLoader,
    check_params,
)

if TYPE_CHECKING:
    from mlm.project import Project

STAGES = ("data", "model", "fit", "graphics")
MODEL_LIBRARIES = ("pymc", "pytensor")
SAMPLER_LIBRARIES = ("nutpie", "numpy")


@dataclass(frozen=True)
class StageStatus:
    """One row of `mlm status`: a stage (or one figure), its state and why."""

    stage: str
    state: str  # "fresh", "stale" or "missing"
    reason: str
    key: str | None = None
    ran: bool = False  # True when this call did the work, False when it was fresh
    variant: str | None = None  # the model variant, for model, fit and figure rows

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"


Report = Callable[[str, str], None]


def _quiet(stage: str, message: str) -> None:
    pass


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported)."""
    versions = {}
    for name in names:
        try:
            versions[f"{name} version"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[f"{name} version"] = "absent"
    return versions


def explain(current: dict, recorded: dict | None) -> str:
    """Which inputs differ between now and the last run, in words."""
    if recorded is None:
        return "never run"
    changed = [k for k in sorted(set(current) | set(recorded)) if current.get(k) != recorded.get(k)]
    if not changed:
        return "up to date"
    return ", ".join(f"{name} changed" for name in changed)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Pipeline:
    """One pass over a project's stages; loads each input at most once.

    A pipeline is short-lived: the `Project` makes a new one for each run or status, so
    edits made between two calls are always seen.
    """

    def __init__(
        self,
        project: Project,
        report: Report | None = None,
        variant: str = "model",
        shared: dict | None = None,
    ):
        self.project = project
        self.root = project.root
        self.store = project.store
        self.variant = variant
        self.model_file = project.model_file(variant)
        # Pipelines of several variants in one pass share the data and the loaded modules.
        self._shared = shared if shared is not None else {}
        self.slots = self._shared.setdefault("slots", SlotLoader(project.root))
        self._data_memo: dict[str, Any] = self._shared.setdefault("memo", {})
        self._memo: dict[str, Any] = {}
        self.report = report or _quiet

    def _once(self, name: str, compute: Callable[[], Any], memo: dict | None = None) -> Any:
        memo = self._memo if memo is None else memo
        if name not in memo:
            memo[name] = compute()
        return memo[name]

    def _row(self, stage: str, state: str, reason: str, key: str | None, ran: bool = False):
        return StageStatus(stage, state, reason, key, ran, self.variant)

    def _say(self, stage: str, message: str) -> None:
        label = stage if self.project.single_variant else f"{stage} [{self.variant}]"
        self.report(label, message)

    # data -------------------------------------------------------------------------------
    def data_stamp(self) -> dict:
        """What load() reads: data.py's code and the files under data/ (by content)."""
        stamp = (
            dict(code_fingerprints(self.root / SLOT_FILES["data"], self.root))
            if (self.root / SLOT_FILES["data"]).is_file()
            else {}
        )
        record = read_json(self.store.data_record_path) or {}
        known = record.get("files", {})
        files = {}
        data_dir = self.root / "data"
        if data_dir.is_dir():
            for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
                rel = path.relative_to(self.root).as_posix()
                info = path.stat()
                seen = known.get(rel)
                # Re-hash only files whose size or modification time moved.
                if seen and seen[:2] == [info.st_size, info.st_mtime_ns]:
                    files[rel] = seen
                else:
                    files[rel] = [info.st_size, info.st_mtime_ns, file_digest(path)]
        stamp.update({rel: entry[2] for rel, entry in files.items()})
        self._data_memo["data files"] = files
        return stamp

    def data_key(self) -> str:
        """The data's content hash, read from the record while load()'s inputs are unchanged."""

        def compute() -> str:
            record = read_json(self.store.data_record_path)
            if record and record.get("stamp") == self.data_stamp() and "key" in record:
                return record["key"]
            self.data()
            return self._data_memo["data key"]

        return self._once("data key", compute, self._data_memo)

    def data(self):
        """The DataFrame load() returns (checked), loaded at most once per pipeline."""

        def compute():
            import pandas as pd

            fn = self.slots.function("data", SLOT_FUNCTIONS["data"])
            self.report("data", "loading")
            frame = self.slots.call("data", fn, self._providers("data"))
            if not isinstance(frame, pd.DataFrame):
                raise MlmError(
                    f"data.py: load() returned {type(frame).__name__}, expected a pandas.DataFrame"
                )
            if frame.empty:
                raise MlmError("data.py: load() returned an empty DataFrame")
            self._data_memo["data key"] = data_fingerprint(frame)
            return frame

        return self._once("data", compute, self._data_memo)

    def data_status(self) -> StageStatus:
        record = read_json(self.store.data_record_path)
        stamp = self.data_stamp()
        if record is None:
            key = self.data_key()
            return StageStatus("data", "missing", "never loaded", key)
        if record.get("stamp") == stamp:
            return StageStatus("data", "fresh", f"{record.get('rows', '?')} rows", record["key"])
        key = self.data_key()
        moved = explain(stamp, record.get("stamp"))
        if key == record.get("key"):
            return StageStatus("data", "fresh", f"{moved}; same data", key)
        return StageStatus("data", "stale", f"data changed ({moved})", key)

    def run_data(self, force: bool = False) -> StageStatus:
        status = self.data_status()
        if status.fresh and not force:
            return status
        frame = self.data()
        stamp = self.data_stamp()
        atomic_write_json(
            self.store.data_record_path,
            {
                "key": self._data_memo["data key"],
                "stamp": stamp,
                "files": self._data_memo["data files"],
                "rows": len(frame),
                "columns": [str(c) for c in frame.columns],
                "loaded_at": _now(),
            },
        )
        self.report("data", f"loaded {len(frame)} rows x {frame.shape[1]} columns")
        return StageStatus("data", "fresh", f"{len(frame)} rows", self._data_memo["data key"], True)

    # model ------------------------------------------------------------------------------
    def model_inputs(self) -> dict:
        def compute() -> dict:
            inputs = code_fingerprints(self._slot_path("model", self.model_file), self.root)
            inputs["data"] = self.data_key()
            inputs.update(library_versions(MODEL_LIBRARIES))
            return inputs

        return self._once("model inputs", compute)

    def model_key(self) -> str:
        return digest(self.model_inputs())

    def model(self):
        """The pymc.Model that build() returns (checked), built at most once per pipeline."""

        def compute():
            fn = self.slots.function("model", SLOT_FUNCTIONS["model"], self.model_file)
            self._say("model", "building")
            try:
                model = self.slots.call("model", fn, self._providers("model"), self.model_file)
            except UserCodeError as exc:
                data = self._data_memo.get("data")
                if isinstance(exc.original, KeyError) and data is not None:
                    columns = ", ".join(map(str, data.columns))
                    raise MlmError(f"{exc}\n  the data's columns: {columns}") from exc
                if data is not None and (missing := _missing_values(data)):
                    # pm.Data refuses NaN; say where they are and what to do.
                    raise MlmError(
                        f"{exc}\n  the data have missing (NaN) values: {missing}; drop or fix "
                        "those rows in data.py"
                    ) from exc
                raise
            import pymc as pm

            if not isinstance(model, pm.Model):
                hint = " (did you forget `return model`?)" if model is None else ""
                raise MlmError(
                    f"{self.model_file}: build() returned {type(model).__name__}, expected a "
                    f"pymc.Model{hint}"
                )
            _check_observed(model, self.model_file)
            atomic_write_json(
                self.store.model_record_path(self.variant),
                {
                    "key": self.model_key(),
                    "inputs": self.model_inputs(),
                    "free_variables": [v.name for v in model.free_RVs],
                    "observed_variables": [v.name for v in model.observed_RVs],
                    "coords": {k: len(v) for k, v in model.coords.items() if v is not None},
                    "built_at": _now(),
                },
            )
            return model

        return self._once("model", compute)

    def model_status(self) -> StageStatus:
        key = self.model_key()
        record = read_json(self.store.model_record_path(self.variant))
        if record and record.get("key") == key:
            return self._row("model", "fresh", "built", key)
        if self.store.has_trace(self.variant, self.fit_key()):
            return self._row("model", "fresh", "its trace is cached", key)
        if record is None:
            return self._row("model", "missing", "never built", key)
        return self._row("model", "stale", explain(self.model_inputs(), record.get("inputs")), key)

    def run_model(self, force: bool = False) -> StageStatus:
        status = self.model_status()
        if status.fresh and not force:
            return status
        model = self.model()
        names = ", ".join(v.name for v in model.free_RVs)
        self._say("model", f"built: {names}")
        return self._row("model", "fresh", "built", self.model_key(), True)

    # fit --------------------------------------------------------------------------------
    def fit_inputs(self) -> dict:
        def compute() -> dict:
            inputs = dict(self.model_inputs())
            inputs.update(code_fingerprints(self._slot_path("fit", "fit.py"), self.root))
            inputs["seed"] = self.project.seed
            inputs.update(library_versions(SAMPLER_LIBRARIES))
            return inputs

        return self._once("fit inputs", compute)

    def fit_key(self) -> str:
        return digest(self.fit_inputs())

    def fit_status(self) -> StageStatus:
        key = self.fit_key()
        problem = self.store.trace_problem(self.variant, key)
        if problem is None:
            manifest = self.store.trace_manifest(self.variant, key) or {}
            reason = f"trace of {manifest.get('created_at', '?')}"
            made_by = manifest.get("mlm_version")
            if made_by != MLM_VERSION:
                reason += f" (made by mlm {made_by})"
            return self._row("fit", "fresh", reason, key)
        if problem != "absent":
            return self._row("fit", "stale", f"cached trace unusable: {problem}", key)
        latest = self.store.latest_key(self.variant)
        manifest = self.store.trace_manifest(self.variant, latest) if latest else None
        if manifest is None:
            return self._row("fit", "missing", "never fitted", key)
        return self._row("fit", "stale", explain(self.fit_inputs(), manifest.get("inputs")), key)

    def run_fit(self, force: bool = False) -> StageStatus:
        status = self.fit_status()
        if status.fresh and not force:
            return status
        fn = self.slots.function("fit", SLOT_FUNCTIONS["fit"])
        with self.store.lock(
            f"fit-{self.variant}",
            wait=self.project.wait,
            on_wait=lambda pid: self._say("fit", f"waiting: mlm (pid {pid}) is fitting this model"),
        ):
            if not force and self.fit_status().fresh:
                return self._row("fit", "fresh", "fitted by another mlm meanwhile", status.key)
            return self._sample(fn, "forced" if status.fresh else status.reason)

    def _sample(self, fn: Callable, reason: str) -> StageStatus:
        model = self.model()
        self._say("fit", f"sampling ({reason})")
        start = time.perf_counter()
        with (
            _interrupt_guard() as guard,
            compiled.persistent(self.project.config.compile_cache) as compiles,
        ):
            idata = self.slots.call("fit", fn, self._providers("fit", model=lambda: model))
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
        key = self.fit_key()
        manifest = {
            "key": key,
            "variant": self.variant,
            "inputs": self.fit_inputs(),
            "seed": self.project.seed,
            "mlm_version": MLM_VERSION,
            "created_at": _now(),
            "wall_time_s": round(wall, 3),
            "groups": sorted(idata.children),
            "diagnostics": measure(idata),
        }
        self.store.save_trace(self.variant, key, idata, manifest)
        self._memo["idata"] = idata
        reused = " (compiled model reused from disk)" if compiles.loaded else ""
        self._say("fit", f"sampled in {wall:.1f} s{reused}; trace cached as {key}")
        return self._row("fit", "fresh", "sampled", key, True)

    def idata(self):
        """The trace for the current key: from the cache when fresh, else sampled now."""
        if "idata" not in self._memo:
            key = self.fit_key()
            if not self.store.has_trace(self.variant, key):
                self.run_fit()
            if "idata" not in self._memo:
                self._say("fit", f"loading cached trace {key}")
                try:
                    self._memo["idata"] = self.store.load_trace(self.variant, key)
                except CorruptTrace as exc:
                    self._say("fit", f"warning: {exc}")
                    self.run_fit()
        return self._memo["idata"]

    # graphics ---------------------------------------------------------------------------
    def figures(self) -> list[FigureFunction]:
        def compute():
            path = self._slot_path("graphics", "graphics.py")
            found, context = figure_functions(path)
            self._data_memo["graphics context"] = {
                f"{name} (shared code)": fp
                for name, fp in code_fingerprints(path, self.root).items()
                if name != SLOT_FILES["graphics"]
            } | {"graphics.py (shared code)": context}
            for figure in found:
                params = [(p, True) for p in figure.params]
                check_params("graphics.py", figure.name, params, SLOT_PARAMS["graphics"])
            if not found:
                raise MlmError("graphics.py defines no public function; each one draws a figure")
            return found

        return self._once("figures", compute, self._data_memo)

    def figure_inputs(self, figure: FigureFunction) -> dict:
        self.figures()
        inputs = {f"{figure.name}()": figure.fingerprint, **self._data_memo["graphics context"]}
        inputs["figure format"] = (
            f"{self.project.config.figure_format}@{self.project.config.figure_dpi}"
        )
        if "idata" in figure.params:
            inputs.update(self.fit_inputs())
        if "model" in figure.params:
            inputs.update(self.model_inputs())
        if "data" in figure.params:
            inputs["data"] = self.data_key()
        return inputs

    def figure_path(self, figure: FigureFunction) -> Path:
        folder = self.project.figures_dir
        if not self.project.single_variant:
            folder = folder / self.variant
        return folder / f"{figure.name}.{self.project.config.figure_format}"

    def figure_status(self, figure: FigureFunction) -> StageStatus:
        inputs = self.figure_inputs(figure)
        key = digest(inputs)
        stage = f"graphics:{figure.name}"
        record = read_json(self.store.figure_record_path(self.variant, figure.name))
        if record is None:
            return self._row(stage, "missing", "never drawn", key)
        if record.get("key") != key:
            return self._row(stage, "stale", explain(inputs, record.get("inputs")), key)
        if not self.figure_path(figure).is_file():
            return self._row(stage, "stale", "figure file missing", key)
        return self._row(stage, "fresh", self._figure_label(figure), key)

    def select_figures(self, name: str | None) -> list[FigureFunction]:
        figures = self.figures()
        if name is None:
            return figures
        chosen = [f for f in figures if f.name == name]
        if not chosen:
            known = ", ".join(f.name for f in figures)
            raise MlmError(f"graphics.py has no figure function {name}(); it has: {known}")
        return chosen

    def run_figure(self, figure: FigureFunction, force: bool = False) -> StageStatus:
        status = self.figure_status(figure)
        if status.fresh and not force:
            return status
        module = self.slots.module("graphics")
        fn = getattr(module, figure.name)
        start = time.perf_counter()
        result = self.slots.call("graphics", fn, self._providers("graphics"))
        path = self.figure_path(figure)
        _save_figure(result, path, self.project.config.figure_dpi, figure.name)
        atomic_write_json(
            self.store.figure_record_path(self.variant, figure.name),
            {
                "key": status.key,
                "inputs": self.figure_inputs(figure),
                "file": path.relative_to(self.root).as_posix(),
                "drawn_at": _now(),
                "wall_time_s": round(time.perf_counter() - start, 3),
            },
        )
        self._say(f"graphics:{figure.name}", f"drew {path.relative_to(self.root)}")
        return self._row(
            f"graphics:{figure.name}", "fresh", self._figure_label(figure), status.key, True
        )

    def _figure_label(self, figure: FigureFunction) -> str:
        return self.figure_path(figure).relative_to(self.project.figures_dir).as_posix()

    # the whole pipeline -----------------------------------------------------------------
    def status(self, with_data: bool = True) -> list[StageStatus]:
        rows = [self.data_status()] if with_data else []
        rows += [self.model_status(), self.fit_status()]
        rows.extend(self.figure_status(f) for f in self.figures())
        return rows

    def plan(self, stage: str, force: bool = False, with_data: bool = True) -> list[StageStatus]:
        """What `run(stage, force)` would do, with why; nothing is run or written."""
        target, figure = _parse_stage(stage)
        rows = {row.stage: row for row in self.status()}
        plan = []

        def add(name: str, forced: bool) -> None:
            row = rows[name]
            if forced:
                plan.append(StageStatus(row.stage, row.state, "forced", row.key))
            elif not row.fresh:
                plan.append(row)

        if with_data:
            add("data", force and target == "data")
        if target == "model":
            add("model", force)
        elif target == "fit":
            add("fit", force)
        elif target == "graphics":
            chosen = self.select_figures(figure)
            if any("idata" in f.params for f in self._to_draw(chosen, force)):
                add("fit", False)
            for fig in chosen:
                add(f"graphics:{fig.name}", force)
        return plan

    def run(self, stage: str, force: bool = False, with_data: bool = True) -> list[StageStatus]:
        """Run `stage` and whatever stale stage it needs, make-style.

        `force` reruns the named stage (every figure, for graphics), not its inputs.
        """
        target, figure = _parse_stage(stage)
        results = [self.run_data(force and target == "data")] if with_data else []
        if target == "model":
            results.append(self.run_model(force))
        elif target == "fit":
            results.append(self.run_fit(force))
        elif target == "graphics":
            chosen = self.select_figures(figure)
            if any("idata" in f.params for f in self._to_draw(chosen, force)):
                results.append(self.run_fit())
            failures = []
            for fig in chosen:
                # One failing figure must not cost the others: draw them all, then report.
                try:
                    results.append(self.run_figure(fig, force))
                except MlmError as exc:
                    failures.append(str(exc))
                    self._say(f"graphics:{fig.name}", "failed")
            if failures:
                names = "" if len(failures) == 1 else f"{len(failures)} figures failed:\n"
                raise MlmError(names + "\n".join(failures))
        return results

    def _to_draw(self, figures: list[FigureFunction], force: bool) -> list[FigureFunction]:
        return [f for f in figures if force or not self.figure_status(f).fresh]

    # helpers ----------------------------------------------------------------------------
    def _slot_path(self, slot: str, filename: str) -> Path:
        path = self.root / filename
        if not path.is_file():
            raise MlmError(
                f"{filename} not found in {self.root}; mlm expects it to define "
                f"{SLOT_PURPOSE[slot]}"
            )
        return path

    def _providers(self, slot: str, **overrides) -> dict[str, Callable[[], Any]]:
        providers = {
            "project": lambda: self.project,
            "data": self.data,
            "model": self.model,
            "idata": self.idata,
            "variant": lambda: self.variant,
        }
        providers.update(overrides)
        return {name: providers[name] for name in SLOT_PARAMS[slot]}


def _missing_values(data) -> str:
    """Where a DataFrame has NaN, as "y at rows [3, 17]; x at rows [5]" ("" if nowhere)."""
    try:
        missing = data.isna()
    except (AttributeError, TypeError):
        return ""
    parts = []
    for column in missing.columns[missing.any().to_numpy()]:
        rows = data.index[missing[column].to_numpy()]
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        parts.append(f"{column} at rows {list(rows[:10])}{more}")
    return "; ".join(parts)


def _check_observed(model, filename: str) -> None:
    """Refuse a model without data, or with NaN or infinite observations."""
    import numpy as np

    if not model.observed_RVs:
        raise MlmError(
            f"{filename}: build() returned a model with no observed variable; pass the "
            "outcome to its likelihood as observed=..."
        )
    for rv in model.observed_RVs:
        value = model.rvs_to_values[rv]
        observed = (
            value.get_value() if hasattr(value, "get_value") else getattr(value, "data", None)
        )
        if observed is None or not np.issubdtype(np.asarray(observed).dtype, np.number):
            continue
        observed = np.asarray(observed, dtype=float)
        bad = ~np.isfinite(observed)
        name = rv.name.removesuffix("_observed")
        imputed = [v.name for v in model.free_RVs if v.name == f"{name}_unobserved"]
        if bad.any() or imputed:
            where = np.flatnonzero(bad.reshape(-1))[:10].tolist()
            what = (
                f"{int(bad.sum())} infinite value(s) at positions {where}"
                if bad.any()
                else ("missing (NaN) values, which PyMC would silently impute")
            )
            raise MlmError(
                f"{filename}: build(): the observed variable '{name}' has {what}; drop or "
                "fix those rows in data.py"
            )


def _parse_stage(stage: str) -> tuple[str, str | None]:
    target, _, figure = stage.partition(":")
    if target not in STAGES or (figure and target != "graphics"):
        raise MlmError(
            f"unknown stage {stage!r}; choose one of {', '.join(STAGES)} "
            "(or graphics:NAME for one figure)"
        )
    return target, figure or None


def _save_figure(result, path: Path, dpi: int, name: str) -> None:
    """Write a figure function's result to `path` atomically, then close it."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    figure = result
    if not isinstance(figure, Figure):
        # arviz-plots returns a PlotCollection; its matplotlib figure is in .viz.
        viz = getattr(result, "viz", None)
        try:
            figure = viz["figure"].item() if viz is not None else None
        except (KeyError, AttributeError, TypeError, ValueError):
            figure = None
    if not isinstance(figure, Figure):
        raise MlmError(
            f"graphics.py: {name}() returned {type(result).__name__}, expected a matplotlib "
            "Figure (or an arviz-plots PlotCollection)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(figure)


class _interrupt_guard:
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
