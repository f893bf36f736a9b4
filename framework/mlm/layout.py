"""One project's folder: its root, settings, model variants and where each file lives.

A `Layout` is what a slot function receives when it asks for a parameter named
`project`: paths and settings (`project.seed`, `project.path("data", "x.csv")`), nothing
that runs a stage.
"""

from __future__ import annotations

from pathlib import Path

from mlm.config import Config, find_root, read_config
from mlm.errors import MlmError
from mlm.store import Store

DEFAULT_VARIANT = "model"
MODELS_DIR = "models"


class Layout:
    """The folder holding mlm.toml and the slot files, found by walking up from `path`."""

    def __init__(self, path: str | Path = "."):
        self.root: Path = find_root(Path(path))
        self.config: Config = read_config(self.root)
        self.store = Store(self.root)

    def __repr__(self) -> str:
        return f"Layout({str(self.root)!r})"

    # settings ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def seed(self) -> int:
        """The random seed from mlm.toml; fit.py passes it to pm.sample."""
        return self.config.seed

    # folders ----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    def path(self, *parts: str) -> Path:
        """A path inside the project: `project.path("data", "trial.csv")`."""
        return self.root.joinpath(*parts)

    # model variants ---------------------------------------------------------------------
    def variants(self) -> list[str]:
        """The model variants: "model" for model.py, then NAME for each models/NAME.py."""
        names = [DEFAULT_VARIANT] if (self.root / "model.py").is_file() else []
        folder = self.root / MODELS_DIR
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if path.name.startswith("_"):
                    continue
                if path.stem == DEFAULT_VARIANT:
                    raise MlmError(
                        "models/model.py clashes with the variant named 'model' (model.py); "
                        "rename it"
                    )
                names.append(path.stem)
        if not names:
            raise MlmError(
                f"model.py not found in {self.root} (nor any models/NAME.py); mlm expects it "
                "to define build(data) -> pymc.Model"
            )
        return names

    def chosen(self, models: list[str] | None) -> list[str]:
        """The variants named in `models` (all when none), checked to exist."""
        known = self.variants()
        if not models:
            return known
        unknown = [m for m in models if m not in known]
        if unknown:
            raise MlmError(
                f"no model variant named {', '.join(unknown)}; this project has: {', '.join(known)}"
            )
        return [m for m in known if m in models]

    @property
    def single_variant(self) -> bool:
        """True when the project has one model (figures then go straight to figures/)."""
        return len(self.variants()) == 1

    def model_file(self, variant: str) -> str:
        """The file that defines `variant`, relative to the root."""
        return "model.py" if variant == DEFAULT_VARIANT else f"{MODELS_DIR}/{variant}.py"

    def figure_dir(self, variant: str) -> Path:
        """Where a variant's figures go: figures/, or figures/<variant>/ beside others."""
        return self.figures_dir if self.single_variant else self.figures_dir / variant
