"""The graphics stage: one figure per public function of graphics.py, each keyed on its
own code, graphics.py's shared code and the keys of what it asks for."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlm.errors import MlmError
from mlm.fingerprint import FigureFunction, code_fingerprints, digest, figure_functions
from mlm.slots import SLOTS, check_params
from mlm.stages.base import Stage, StageStatus, explain
from mlm.store import FILE_MODE, Record

if TYPE_CHECKING:
    from mlm.stages.session import Session


class GraphicsScan:
    """graphics.py read once per session: its figure functions and its shared code."""

    def __init__(self, session: Session):
        path = session.slots.path("graphics")
        found, context = figure_functions(path)
        self.context = {
            f"{name} (shared code)": fp
            for name, fp in code_fingerprints(path, session.layout.root).items()
            if name != SLOTS["graphics"].file
        } | {"graphics.py (shared code)": context}
        for figure in found:
            params = [(p, True) for p in figure.params]
            try:
                check_params("graphics.py", figure.name, params, SLOTS["graphics"].params)
            except MlmError as exc:
                raise MlmError(
                    f"{exc}\n  every public function of graphics.py draws a figure; if "
                    f"{figure.name}() is a helper, name it _{figure.name} (a leading underscore "
                    "keeps a function from being a figure)"
                ) from None
        if not found:
            raise MlmError("graphics.py defines no public function; each one draws a figure")
        self.functions: list[FigureFunction] = found

    def select(self, name: str | None) -> list[FigureFunction]:
        """Every figure function, or the one named `name` (refused if there is none)."""
        if name is None:
            return self.functions
        chosen = [f for f in self.functions if f.name == name]
        if not chosen:
            known = ", ".join(f.name for f in self.functions)
            raise MlmError(f"graphics.py has no figure function {name}(); it has: {known}")
        return chosen


class FigureStage(Stage):
    """One figure of one variant: drawn from the cached trace, saved atomically."""

    def __init__(self, session: Session, variant: str, figure: FigureFunction):
        super().__init__()
        self.session = session
        self.variant = variant
        self.figure = figure
        self.label = f"graphics:{figure.name}"
        self.store = session.layout.store
        self.config = session.layout.config

    @property
    def needs_trace(self) -> bool:
        # `predict` draws from the trace too (never resampling): its figure is keyed on it.
        return "idata" in self.figure.params or "predict" in self.figure.params

    def inputs(self) -> dict:
        inputs = self._inputs()
        fit = self.session.fit(self.variant)
        if self.needs_trace and not fit.complete() and fit.incomplete_kept():
            # Drawn from the draws of an incomplete fit: redrawn once the fit is finished.
            return {**inputs, "trace": "incomplete"}
        return inputs

    def key(self) -> str:
        return digest(self.inputs())

    def _inputs(self) -> dict:
        def compute() -> dict:
            session, variant = self.session, self.variant
            inputs = {f"{self.figure.name}()": self.figure.fingerprint}
            inputs.update(session.graphics().context)
            inputs["figure format"] = f"{self.config.figure_format}@{self.config.figure_dpi}"
            if self.needs_trace:
                inputs.update(session.fit(variant).inputs())
            if "model" in self.figure.params:
                inputs.update(session.model(variant).inputs())
            if "data" in self.figure.params:
                inputs["data"] = session.data().key()
            return inputs

        return self._once("inputs", compute)

    def path(self) -> Path:
        """The figure's file: figures/[<variant>/]<name>.<format>."""
        layout = self.session.layout
        return layout.figure_dir(self.variant) / f"{self.figure.name}.{self.config.figure_format}"

    def _shown(self) -> str:
        return self.path().relative_to(self.session.layout.figures_dir).as_posix()

    def status(self) -> StageStatus:
        key = self.key()
        record = self.store.read(self.store.paths.figure_record(self.variant, self.figure.name))
        if record is None:
            return self.row("missing", "never drawn", key)
        if record.key != key:
            return self.row("stale", explain(self.inputs(), record.inputs), key)
        if not self.path().is_file():
            return self.row("stale", "figure file missing", key)
        return self.row("fresh", self._shown(), key)

    def run(self, force: bool = False) -> StageStatus:
        status = self.status()
        if status.fresh and not force:
            return status
        session = self.session
        fn = getattr(session.slots.module("graphics"), self.figure.name)
        start = time.perf_counter()
        result = session.slots.call("graphics", fn, session.providers("graphics", self.variant))
        path = self.path()
        root = session.layout.root
        save_figure(result, path, self.config.figure_dpi, self.figure.name)
        details = {
            "file": path.relative_to(root).as_posix(),
            "wall_time_s": round(time.perf_counter() - start, 3),
        }
        self.store.write(
            self.store.paths.figure_record(self.variant, self.figure.name),
            Record(status.key, self.inputs(), details=details),
        )
        session.say(self.label, f"drew {path.relative_to(root)}", self.variant)
        return self.row("fresh", self._shown(), status.key, ran=True)

    def value(self) -> Path:
        """The figure's file, drawn now if it is not fresh."""
        self.run()
        return self.path()


def figure_moves(
    session: Session, variants: list[str] | None = None
) -> list[tuple[Path, Path | None]]:
    """The figures left in the other layout, and where each goes: (from, to), to None when
    it is removed. `variants` are the project's variants (by default, as they are now; a
    generator's --pretend gives them as they would be).

    One variant draws to figures/NAME.png, several to figures/<variant>/NAME.png. After a
    variant is added, the single-variant files of graphics.py's figures move into
    figures/model/ (they are model.py's), or are removed when model.py is gone; after a
    variant is removed, leaving one, its files move back up. Only files named after a
    figure function move; nothing else in figures/ is touched.
    """
    layout = session.layout
    try:
        names = [f.name for f in session.graphics().functions]
        variants = variants or layout.variants()
    except MlmError:
        return []  # graphics.py or the models are broken: the run will say so
    suffix = layout.config.figure_format
    moves: list[tuple[Path, Path | None]] = []
    for name in names:
        flat = layout.figures_dir / f"{name}.{suffix}"
        if len(variants) > 1:
            if not flat.is_file():
                continue
            target = layout.figures_dir / variants[0] / flat.name
            keep = variants[0] == "model" and not target.exists()
            moves.append((flat, target if keep else None))
        else:
            nested = layout.figures_dir / variants[0] / flat.name
            if nested.is_file() and not flat.exists():
                moves.append((nested, flat))
    return moves


def settle_figures(session: Session) -> list[tuple[Path, Path | None]]:
    """Move figures left in the other layout into the current one (see `figure_moves`);
    (from, to) per file, as done."""
    layout = session.layout
    moves = figure_moves(session)
    for old, new in moves:
        if new is None:
            old.unlink()
            continue
        new.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)
        if new.parent == layout.figures_dir:
            try:
                old.parent.rmdir()  # only when empty
            except OSError:
                pass
    several = len(layout.variants()) > 1 if moves else False
    for old, new in moves:
        shown = old.relative_to(layout.root)
        what = f"moved {shown} to {new.relative_to(layout.root)}" if new else f"removed {shown}"
        why = "each variant draws to figures/<variant>/" if several else "one model"
        session.say("graphics", f"{what} ({why})")
    return moves


def save_figure(result, path: Path, dpi: int, name: str) -> None:
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
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        # Disk full or a read-only folder: name the file; the other figures are still drawn.
        raise MlmError(
            f"graphics.py: {name}(): could not write {path}: {exc.strerror or exc}; "
            "the previous file (if any) is intact"
        ) from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        plt.close(figure)
