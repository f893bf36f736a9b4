"""A run session: one pass over a project's stages, holding what they share.

Instead of a string-keyed dict handed around, the session holds typed pieces: the
project's layout, the loaded slot modules, the progress callback, whether to wait for
another process's lock, and one object per stage (per variant), made on first use. Every
command makes a new session, so edits made between two commands are always seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlm.layout import Layout
from mlm.slots import SLOTS, SlotLoader
from mlm.stages.base import Progress, quiet

if TYPE_CHECKING:
    from mlm.fingerprint import FigureFunction
    from mlm.stages.compare import CompareStage
    from mlm.stages.data import DataStage
    from mlm.stages.fit import FitStage
    from mlm.stages.graphics import FigureStage, GraphicsScan
    from mlm.stages.model import ModelStage


@dataclass
class Session:
    """The stages of one project for one command, and what they share."""

    layout: Layout
    progress: Progress = quiet
    wait: bool = True  # wait for another mlm fitting the same model (else fail at once)
    # Makes the `predict` a figure may ask for: predictor(session, variant) -> a callable
    # predict(newdata, kind=...). Given by the layer above (mlm.predict, through Project):
    # stages never import it.
    predictor: Callable[[Session, str], Callable] | None = None
    slots: SlotLoader = field(init=False)
    _data: DataStage | None = field(default=None, init=False)
    _models: dict[str, ModelStage] = field(default_factory=dict, init=False)
    _fits: dict[str, FitStage] = field(default_factory=dict, init=False)
    _scan: GraphicsScan | None = field(default=None, init=False)
    _figures: dict[tuple[str, str], FigureStage] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.slots = SlotLoader(self.layout.root)

    # the stages, one object each ---------------------------------------------------------
    def data(self) -> DataStage:
        from mlm.stages.data import DataStage

        if self._data is None:
            self._data = DataStage(self)
        return self._data

    def model(self, variant: str) -> ModelStage:
        from mlm.stages.model import ModelStage

        if variant not in self._models:
            self._models[variant] = ModelStage(self, variant)
        return self._models[variant]

    def fit(self, variant: str) -> FitStage:
        from mlm.stages.fit import FitStage

        if variant not in self._fits:
            self._fits[variant] = FitStage(self, variant)
        return self._fits[variant]

    def graphics(self) -> GraphicsScan:
        """graphics.py's figure functions (the same for every variant)."""
        from mlm.stages.graphics import GraphicsScan

        if self._scan is None:
            self._scan = GraphicsScan(self)
        return self._scan

    def figure(self, variant: str, figure: FigureFunction) -> FigureStage:
        from mlm.stages.graphics import FigureStage

        if (variant, figure.name) not in self._figures:
            self._figures[variant, figure.name] = FigureStage(self, variant, figure)
        return self._figures[variant, figure.name]

    def figures(self, variant: str, name: str | None = None) -> list[FigureStage]:
        """The figure stages of a variant: all, or the one named `name`."""
        return [self.figure(variant, f) for f in self.graphics().select(name)]

    def compare(self, variants: list[str]) -> CompareStage:
        from mlm.stages.compare import CompareStage

        return CompareStage(self, variants)

    # what slot functions receive, and what the user is told -----------------------------
    def providers(self, slot: str, variant: str | None, **overrides) -> dict[str, Callable]:
        """What a slot function may ask for by parameter name, each made on demand."""
        providers: dict[str, Callable[[], Any]] = {
            "project": lambda: self.layout,
            "data": lambda: self.data().value(),
            "variant": lambda: variant,
        }
        if variant is not None:
            providers["model"] = lambda: self.model(variant).value()
            providers["idata"] = lambda: self.fit(variant).value()
            providers["predict"] = lambda: self._predict(variant)
        providers.update(overrides)
        return {name: providers[name] for name in SLOTS[slot].params if name in providers}

    def _predict(self, variant: str) -> Callable:
        """The `predict` callable a figure of `variant` asks for."""
        if self.predictor is None:
            from mlm.errors import MlmError

            raise MlmError(
                "`predict` is available to figures drawn through mlm.Project (or the mlm "
                "command), not to a bare Session"
            )
        return self.predictor(self, variant)

    def say(self, stage: str, message: str, variant: str | None = None) -> None:
        """Tell the user what a stage does (labelled with its variant beside others)."""
        label = stage if variant is None or self.layout.single_variant else f"{stage} [{variant}]"
        self.progress(label, message)
