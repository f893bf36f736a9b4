"""What a study returns: its records, the aggregate rows and the figures drawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlm.study.design import Study
from mlm.study.figures import draw_figures
from mlm.study.summary import aggregate, label, rank_uniformity


@dataclass
class StudyResult:
    """A finished study: its replicate records, one row per design point and parameter,
    and the figures drawn (figures/study/)."""

    study: Study
    records: list[dict]
    rows: list[dict]
    figures: list[Path]

    @classmethod
    def of(cls, layout, study: Study, records: list[dict], figures: bool = True) -> StudyResult:
        rows = aggregate(records, study.settings["interval"])
        drawn = []
        if figures and records:
            folder = layout.figures_dir / "study"
            if not layout.single_variant:
                folder = folder / study.variant
            drawn = draw_figures(
                rows,
                study.grid,
                folder,
                study.settings,
                layout.config.figure_format,
                layout.config.figure_dpi,
                set(study.truth) | set(study.grid),
            )
        return cls(study, records, rows, drawn)

    @property
    def variant(self) -> str:
        return self.study.variant

    @property
    def computed(self) -> int:
        """How many replicates this call fitted (the rest came from the cache)."""
        return sum(bool(r.get("computed")) for r in self.records)

    def row(self, parameter: str, **design) -> dict:
        """The aggregate row of one parameter (at one design point, given a grid)."""
        for row in self.rows:
            if row["parameter"] == parameter and all(
                row["design"].get(k) == v for k, v in design.items()
            ):
                return row
        raise KeyError(f"no study row for {parameter} at {design}")

    def table(self):
        """The rows as a pandas DataFrame (without the SBC ranks)."""
        import pandas as pd

        frame = pd.DataFrame(
            [
                {
                    **r["design"],
                    **{
                        k: v
                        for k, v in r.items()
                        if k not in ("design", "ranks", "coverage_interval")
                    },
                }
                for r in self.rows
            ]
        )
        return frame

    def rank_p_values(self) -> dict[str, float]:
        """Chi-square p-values of SBC rank uniformity, per parameter row with a truth."""
        return {
            label(r): rank_uniformity(r["ranks"], self.study.settings["sbc_draws"])
            for r in self.rows
            if "ranks" in r
        }
