"""What a study is: the design to simulate, the settings to fit with, and its key.

A replicate's result is keyed by the model and data code, the truth, the design point,
the sampling settings, the project seed and the library versions (`Study.point_key`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from mlm.errors import MlmError
from mlm.fingerprint import code_fingerprints, digest
from mlm.stages import library_versions

LIBRARIES = ("pymc", "pytensor", "nutpie", "numpy")
DEFAULTS = {
    "draws": 500,
    "tune": 500,
    "chains": 2,
    "interval": 0.9,
    "max_size": 20,
    "sbc_draws": 99,
}


@dataclass(frozen=True)
class Study:
    """What to simulate and how to fit it; the same object on the client and the workers."""

    root: str
    variant: str = "model"
    model_file: str = "model.py"
    truth: dict = field(default_factory=dict)  # simulate()'s arguments
    grid: dict = field(default_factory=dict)  # design argument -> list of values
    settings: dict = field(default_factory=lambda: dict(DEFAULTS))
    seed: int = 0
    compile_cache: bool = True  # mlm.toml [fit] compile_cache; results do not depend on it

    @property
    def sbc(self) -> bool:
        """Simulation-based calibration (from the prior) when neither truth nor grid is given."""
        return not self.truth and not self.grid

    def designs(self) -> list[dict]:
        """Every point of the grid (one empty design without a grid)."""
        keys = list(self.grid)
        points = itertools.product(*self.grid.values())
        return [dict(zip(keys, values, strict=True)) for values in points]

    def inputs(self) -> dict:
        """What every replicate's result depends on, besides its design and index."""
        root = Path(self.root)
        code = code_fingerprints(root / self.model_file, root)
        if (root / "data.py").is_file():
            code.update(code_fingerprints(root / "data.py", root))
        return {
            "code": code,
            "truth": self.truth,
            "settings": self.settings,
            "seed": self.seed,
            "mode": "sbc" if self.sbc else "truth",
            **library_versions(LIBRARIES),
        }

    def point_key(self, design: dict, inputs: dict | None = None) -> str:
        return digest(inputs or self.inputs(), design)


def parse_values(pairs: list[str], several: bool) -> dict:
    """`["b1=0.3"]` -> {"b1": 0.3}; with `several`, `["n_groups=5,10"]` -> {"n_groups": [5, 10]}."""
    result = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise MlmError(f"{pair!r}: expected NAME=VALUE{',VALUE...' if several else ''}")
        values = (
            [_number(v.strip(), pair) for v in text.split(",")]
            if several
            else _number(text.strip(), pair)
        )
        result[name.strip()] = values
    return result


def _number(text: str, pair: str) -> int | float:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise MlmError(f"{pair!r}: {text!r} is not a number")


def study_for(layout, variant: str, truth: dict, grid: dict, overrides: dict) -> Study:
    """A Study of a project's variant, its settings from mlm.toml [study], then `overrides`."""
    table = layout.config.raw.get("study", {})
    settings = dict(DEFAULTS)
    for name, value in {**table, **{k: v for k, v in overrides.items() if v is not None}}.items():
        if name not in DEFAULTS:
            raise MlmError(
                f"unknown study setting {name!r} (mlm.toml [study] or argument); "
                f"known: {', '.join(DEFAULTS)}"
            )
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise MlmError(f"study setting {name} must be a positive number, got {value!r}")
        settings[name] = value
    if not 0 < settings["interval"] < 1:
        raise MlmError(
            f"study setting interval must lie between 0 and 1, got {settings['interval']!r}"
        )
    for name, values in grid.items():
        if name in truth:
            raise MlmError(f"{name} is given both as a truth and as a grid axis")
        if not isinstance(values, list) or not values:
            raise MlmError(f"grid axis {name} needs a list of values")
    return Study(
        str(layout.root),
        variant,
        layout.model_file(variant),
        dict(truth),
        dict(grid),
        settings,
        layout.seed,
        layout.config.compile_cache,
    )
