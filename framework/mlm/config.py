"""mlm.toml: finding a project's root and reading its settings.

Reading never prints: a key mlm does not know (a misspelt `[grahpics]` or `dip = 300`) is
kept in `Config.warnings`, naming the file, the key and the closest known name, for the
caller (the CLI) to show.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mlm.errors import MlmError

CONFIG_NAME = "mlm.toml"

# mlm.toml's [check]: the thresholds of the `mlm check` gate, unless the file sets them.
# Defaults follow Vehtari et al. (2021) for r_hat and ESS, Betancourt (2016) for E-BFMI.
CHECK_DEFAULTS = {
    "r_hat": 1.01,  # largest acceptable rank-normalized split r_hat
    "ess_bulk": 400.0,  # smallest acceptable bulk ESS
    "ess_tail": 400.0,  # smallest acceptable tail ESS
    "divergences": 0.0,  # most divergent transitions allowed
    "e_bfmi": 0.3,  # smallest acceptable E-BFMI of any chain
    "tree_depth": 0.01,  # largest acceptable share of draws that hit the maximum tree depth
}

# Every section and key mlm reads. [study] mirrors study.design.DEFAULTS (above this
# layer; tests/test_reliability_messages.py keeps them in step).
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "project": ("name", "seed"),
    "graphics": ("format", "dpi"),
    "fit": ("compile_cache",),
    "check": tuple(CHECK_DEFAULTS),
    "study": ("draws", "tune", "chains", "interval", "max_size", "sbc_draws"),
}


@dataclass(frozen=True)
class Config:
    """The settings of one project, as written in its mlm.toml."""

    name: str
    seed: int
    figure_format: str = "png"
    figure_dpi: int = 150
    compile_cache: bool = True
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    # What in the file mlm does not know, one message each (shown by the CLI).
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)


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


def _closest(name: str, known) -> str:
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else f"; known: {', '.join(known)}"


def unknown_keys(raw: dict, path: Path | str) -> list[str]:
    """One warning per section or key of `raw` that mlm does not read."""
    found = []
    for section, table in raw.items():
        if section not in KNOWN_KEYS:
            hint = _closest(section, KNOWN_KEYS)
            found.append(f"{path}: unknown section [{section}] is ignored{hint}")
            continue
        if not isinstance(table, dict):
            found.append(f"{path}: {section} should be a section ([{section}]); it is ignored")
            continue
        for key in table:
            if key not in KNOWN_KEYS[section]:
                hint = _closest(key, KNOWN_KEYS[section])
                found.append(f"{path}: unknown key {key!r} in [{section}] is ignored{hint}")
    return found


def read_config(root: Path) -> Config:
    """Parse `root/mlm.toml`, naming the file and key at fault when it is wrong."""
    path = root / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MlmError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise MlmError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise MlmError(f"{path}: not UTF-8 text ({exc.reason})") from None

    def table(name: str) -> dict:
        value = raw.get(name, {})
        return value if isinstance(value, dict) else {}

    project, graphics = table("project"), table("graphics")
    name = project.get("name", root.name)
    seed = project.get("seed", 0)
    figure_format = graphics.get("format", "png")
    figure_dpi = graphics.get("dpi", 150)
    compile_cache = table("fit").get("compile_cache", True)
    checks = [
        ("[project] name", name, str),
        ("[project] seed", seed, int),
        ("[graphics] format", figure_format, str),
        ("[graphics] dpi", figure_dpi, int),
    ]
    for key, value, kind in checks:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MlmError(f"{path}: {key} must be {kind.__name__}, got {value!r}")
    if seed < 0:
        raise MlmError(f"{path}: [project] seed must be 0 or more, got {seed}")
    if figure_dpi <= 0:
        raise MlmError(f"{path}: [graphics] dpi must be more than 0, got {figure_dpi}")
    if not isinstance(compile_cache, bool):
        raise MlmError(f"{path}: [fit] compile_cache must be true or false, got {compile_cache!r}")
    if figure_format not in {"png", "pdf", "svg"}:
        raise MlmError(f"{path}: [graphics] format must be png, pdf or svg, got {figure_format!r}")
    warnings = tuple(unknown_keys(raw, path))
    return Config(name, seed, figure_format, figure_dpi, compile_cache, raw, warnings)
