"""mlm.toml: finding a project's root and reading its settings."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mlm.errors import MlmError

CONFIG_NAME = "mlm.toml"


@dataclass(frozen=True)
class Config:
    """The settings of one project, as written in its mlm.toml."""

    name: str
    seed: int
    figure_format: str = "png"
    figure_dpi: int = 150
    compile_cache: bool = True
    raw: dict = field(default_factory=dict, compare=False, repr=False)


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds an mlm.toml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise MlmError(
        f"no {CONFIG_NAME} found in {start} or any folder above it; "
        "run mlm inside a project (or pass -C PATH), or create one with `mlm new NAME`"
    )


def read_config(root: Path) -> Config:
    """Parse `root/mlm.toml`, naming the file and key at fault when it is wrong."""
    path = root / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MlmError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise MlmError(f"{path}: cannot be read: {exc.strerror}") from None
    project = raw.get("project", {})
    graphics = raw.get("graphics", {})
    name = project.get("name", root.name)
    seed = project.get("seed", 0)
    figure_format = graphics.get("format", "png")
    figure_dpi = graphics.get("dpi", 150)
    compile_cache = raw.get("fit", {}).get("compile_cache", True)
    checks = [
        ("[project] name", name, str),
        ("[project] seed", seed, int),
        ("[graphics] format", figure_format, str),
        ("[graphics] dpi", figure_dpi, int),
    ]
    for key, value, kind in checks:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MlmError(f"{path}: {key} must be {kind.__name__}, got {value!r}")
    if not isinstance(compile_cache, bool):
        raise MlmError(f"{path}: [fit] compile_cache must be true or false, got {compile_cache!r}")
    if figure_format not in {"png", "pdf", "svg"}:
        raise MlmError(f"{path}: [graphics] format must be png, pdf or svg, got {figure_format!r}")
    return Config(name, seed, figure_format, figure_dpi, compile_cache, raw)
