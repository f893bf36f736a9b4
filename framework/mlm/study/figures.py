"""A study's figures: coverage with binomial intervals, SBC rank histograms, power curves."""

from __future__ import annotations

from pathlib import Path

from mlm.study.summary import label


def draw_figures(
    rows: list[dict],
    grid: dict,
    folder: Path,
    settings: dict,
    fmt: str = "png",
    dpi: int = 150,
    named: set[str] = frozenset(),
) -> list[Path]:
    """Coverage (with binomial error bars), SBC rank histograms, and a power curve."""
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    calibrated = [r for r in rows if "coverage" in r]
    if calibrated:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(calibrated) + 1.5))
        labels = [label(r) for r in calibrated]
        y = np.arange(len(calibrated))
        low = [max(0.0, r["coverage"] - r["coverage_interval"][0]) for r in calibrated]
        high = [max(0.0, r["coverage_interval"][1] - r["coverage"]) for r in calibrated]
        ax.errorbar([r["coverage"] for r in calibrated], y, xerr=[low, high], fmt="o")
        ax.axvline(settings["interval"], color="grey", linestyle="--")
        ax.set_yticks(y, labels)
        ax.set_xlabel(f"coverage of the {settings['interval']:.0%} intervals (Wilson 95%)")
        written.append(_save(fig, folder / f"coverage.{fmt}", dpi))
        fig, axes = plt.subplots(
            1, min(len(calibrated), 6), squeeze=False, figsize=(2.5 * min(len(calibrated), 6), 2.4)
        )
        for ax, row in zip(axes[0], calibrated, strict=False):
            ax.hist(row["ranks"], bins=10, range=(0, settings["sbc_draws"] + 1))
            ax.axhline(row["n"] / 10, color="grey", linestyle="--")
            ax.set_title(label(row), fontsize=8)
        fig.suptitle("SBC rank histograms (flat when calibrated)")
        written.append(_save(fig, folder / f"ranks.{fmt}", dpi))
    if grid:
        effects = _effects(rows, named)
        axis = next(iter(grid))
        fig, ax = plt.subplots(figsize=(6, 4))
        by_line: dict[tuple, list] = {}
        for row in rows:
            if row["parameter"] not in effects:
                continue
            rest = tuple((k, v) for k, v in row["design"].items() if k != axis)
            by_line.setdefault((row["parameter"], rest), []).append(row)
        for (name, rest), items in sorted(by_line.items(), key=str):
            items.sort(key=lambda r: r["design"][axis])
            ax.errorbar(
                [r["design"][axis] for r in items],
                [r["power"] for r in items],
                yerr=[1.96 * r["power_se"] for r in items],
                marker="o",
                capsize=3,
                label=" ".join([name, *(f"{k}={v}" for k, v in rest)]),
            )
        ax.set_xlabel(axis)
        ax.set_ylabel(f"power (share of {settings['interval']:.0%} intervals excluding 0)")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
        written.append(_save(fig, folder / f"power.{fmt}", dpi))
    return written


def _effects(rows: list[dict], named: set[str]) -> set[str]:
    """Parameters the power curve shows: those named by --truth or --grid (`b1`,
    `sigma_e_treated` for sigma_e[treated]), else every one with a truth."""
    chosen = {r["parameter"] for r in rows if r["parameter"].replace("[", "_").rstrip("]") in named}
    return (
        chosen or {r["parameter"] for r in rows if "truth" in r} or {r["parameter"] for r in rows}
    )


def _save(fig, path: Path, dpi: int) -> Path:
    import os
    import tempfile

    import matplotlib.pyplot as plt

    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)
    return path
