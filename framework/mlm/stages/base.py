"""What every stage shares: its status row, the way staleness is explained, and the
small interface each stage implements (inputs -> key -> status -> run -> value)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from mlm.errors import MlmError
from mlm.fingerprint import digest
from mlm.words import closest

STAGES = ("data", "model", "fit", "graphics", "compare")
MODEL_LIBRARIES = ("pymc", "pytensor")
SAMPLER_LIBRARIES = ("nutpie", "numpy")

# Progress messages: (stage label, message) -> shown to the user (or dropped).
Progress = Callable[[str, str], None]


def quiet(stage: str, message: str) -> None:
    """A progress callback that shows nothing."""


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


def parse_stage(stage: str) -> tuple[str, str | None]:
    """`"graphics:forest"` -> ("graphics", "forest"); an unknown stage is refused."""
    target, _, figure = stage.partition(":")
    if target not in STAGES or (figure and target != "graphics"):
        guess = closest(target, STAGES) if target not in STAGES else None
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise MlmError(
            f"unknown stage {stage!r}{hint}; the stages are {', '.join(STAGES)} "
            "(graphics:NAME for one figure; `mlm study` for a simulation study)"
        )
    return target, figure or None


class Stage(ABC):
    """One step of the pipeline, for one variant where it has one.

    Each stage answers the same questions in the same order, as pytest's FixtureDef keeps
    a fixture's pieces together: what its result depends on (`inputs`), the hash of that
    (`key`), whether the stored result is current (`status`), making it (`run`), and the
    result itself (`value`, from the store when fresh). Values are computed at most once
    per stage object; a `Session` makes new stage objects for each run, so edits made
    between two runs are always seen.
    """

    label: str = ""
    variant: str | None = None

    def __init__(self) -> None:
        self._memo: dict[str, Any] = {}

    def _once(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    @abstractmethod
    def inputs(self) -> dict:
        """What the result depends on, by name (code fingerprints, keys, versions)."""

    def key(self) -> str:
        return self._once("key", lambda: digest(self.inputs()))

    @abstractmethod
    def status(self) -> StageStatus:
        """Fresh, stale or missing, and why; reads the store, runs nothing."""

    @abstractmethod
    def run(self, force: bool = False) -> StageStatus:
        """Make the result unless it is fresh (or `force`); says what it did."""

    def row(self, state: str, reason: str, key: str | None = None, ran: bool = False):
        return StageStatus(self.label, state, reason, key, ran, self.variant)
