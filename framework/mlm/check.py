"""Sampling diagnostics, and `mlm check`: a gate against thresholds from mlm.toml.

The same numbers go into each trace's manifest, so `mlm summary` and the report show
them without recomputing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlm.config import CHECK_DEFAULTS
from mlm.errors import MlmError

DEFAULT_THRESHOLDS = CHECK_DEFAULTS  # mlm.toml [check]: the gate's thresholds

ADVICE = {
    "r_hat": "chains disagree: run longer (more tune and draws), look for multimodality, or "
    "reparameterize (e.g. non-centered group effects)",
    "ess_bulk": "too few effective draws: increase draws, or reparameterize to cut "
    "autocorrelation (non-centered group effects, scaled predictors)",
    "ess_tail": "tails poorly explored: increase draws; the interval ends are unreliable",
    "divergences": "the sampler could not follow the posterior's curvature: raise "
    "target_accept (pm.sample(target_accept=0.95)) or reparameterize (non-centered group "
    "effects); do not trust the posterior until they are gone",
    "e_bfmi": "momentum resampling explores energy poorly (heavy tails or a funnel): "
    "reparameterize, or use more informative priors on scale parameters",
    "tree_depth": "trajectories hit the maximum tree depth: the posterior is badly scaled or "
    "correlated; reparameterize, or raise max_treedepth",
}

DEPTH_STATS = ("maxdepth_reached", "reached_max_treedepth")  # nutpie, PyMC's NUTS


@dataclass(frozen=True)
class Check:
    """One diagnostic of one variant against its threshold."""

    variant: str
    name: str
    value: float
    threshold: float
    passed: bool
    detail: str
    findings: tuple = ()  # mlm.diagnosis.Finding rows that explain this failure

    @property
    def advice(self) -> str:
        if self.passed:
            return ""
        if self.findings:
            return " ".join(f.message() for f in self.findings)
        return ADVICE[self.name]


def summary_table(idata, var_names=None, **kwargs):
    """az.summary of the posterior, one variable at a time, then joined.

    ArviZ 1's summary of several variables at once can pair a variable's numbers with
    another order of its cells' labels (seen: u[level, effect] after a variable with the
    `effect` dim alone gets the levels' and effects' order crossed). One variable at a time
    is labelled right.
    """
    import arviz as az
    import pandas as pd

    names = list(var_names) if var_names else list(idata["posterior"].data_vars)
    options = {"round_to": "none", **kwargs}
    tables = [az.summary(idata, var_names=[name], **options) for name in names]
    return pd.concat(tables) if tables else az.summary(idata, **options)


def measure(idata) -> dict[str, Any]:
    """Convergence numbers of a trace: worst r_hat and ESS (and where), divergences,
    E-BFMI and tree-depth saturation."""
    import arviz as az
    import numpy as np

    posterior = idata["posterior"]
    result: dict[str, Any] = {
        "chains": int(posterior.sizes.get("chain", 0)),
        "draws": int(posterior.sizes.get("draw", 0)),
    }
    try:
        with warnings.catch_warnings():
            # constant cells (a correlation matrix's diagonal) divide 0 by 0 in ArviZ
            warnings.simplefilter("ignore", RuntimeWarning)
            table = summary_table(idata, kind="all")
        # A cell whose draws do not vary (corr[x, x] = 1) has no ESS or r_hat to speak of:
        # it must neither fail the gate nor be named as the worst.
        scale = np.maximum(1.0, table["mean"].astype(float).abs())
        table = table[~(table["sd"].astype(float) <= 1e-9 * scale)]
        for column, worst, key in (
            ("r_hat", "idxmax", "max_r_hat"),
            ("ess_bulk", "idxmin", "min_ess_bulk"),
            ("ess_tail", "idxmin", "min_ess_tail"),
        ):
            values = table[column].astype(float)
            if values.notna().any():
                where = getattr(values, worst)()
                result[key] = float(values[where])
                result[f"{key}_at"] = str(where)
    except Exception as exc:  # diagnostics must never lose a finished trace
        result["error"] = f"{type(exc).__name__}: {exc}"
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    if stats is not None:
        from mlm.diagnosis import sampler_settings

        # the template's fit.py samples again at 0.99 after divergences: say which it was
        if "target_accept" in (used := sampler_settings(idata)):
            result["target_accept"] = used["target_accept"]
        if "diverging" in stats:
            result["divergences"] = int(stats["diverging"].sum())
        for name in DEPTH_STATS:
            if name in stats:
                result["tree_depth_share"] = float(stats[name].mean())
                break
        if "energy" in stats:
            try:
                bfmi = az.bfmi(idata)["energy"].to_numpy()
                result["min_e_bfmi"] = float(np.min(bfmi))
            except Exception as exc:
                result["e_bfmi_error"] = f"{type(exc).__name__}: {exc}"
    return result


def thresholds(config_raw: dict, source: str = "mlm.toml") -> dict[str, float]:
    """The gate's thresholds: the defaults, overridden by mlm.toml's [check] table."""
    chosen = dict(DEFAULT_THRESHOLDS)
    for key, value in config_raw.get("check", {}).items():
        if key not in chosen:
            raise MlmError(
                f"{source}: [check] {key} is not a known check; known: {', '.join(chosen)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MlmError(f"{source}: [check] {key} must be a number, got {value!r}")
        chosen[key] = float(value)
    return chosen


def evaluate(variant: str, numbers: dict[str, Any], limits: dict[str, float]) -> list[Check]:
    """Each diagnostic of `numbers` (from `measure`) against `limits`."""
    rows = []

    def add(name: str, value, passed: bool, detail: str) -> None:
        rows.append(Check(variant, name, float(value), limits[name], passed, detail))

    if "max_r_hat" in numbers:
        value = numbers["max_r_hat"]
        add("r_hat", value, value <= limits["r_hat"], f"largest at {numbers['max_r_hat_at']}")
    for name, key in (("ess_bulk", "min_ess_bulk"), ("ess_tail", "min_ess_tail")):
        if key in numbers:
            value = numbers[key]
            add(name, value, value >= limits[name], f"smallest at {numbers[f'{key}_at']}")
    if "divergences" in numbers:
        value = numbers["divergences"]
        total = numbers["chains"] * numbers["draws"]
        at = f" at target_accept {numbers['target_accept']:g}" if "target_accept" in numbers else ""
        add("divergences", value, value <= limits["divergences"], f"of {total} draws{at}")
    if "min_e_bfmi" in numbers:
        value = numbers["min_e_bfmi"]
        add("e_bfmi", value, value >= limits["e_bfmi"], "lowest chain")
    if "tree_depth_share" in numbers:
        value = numbers["tree_depth_share"]
        add("tree_depth", value, value <= limits["tree_depth"], "share of draws at max depth")
    return rows


def explain(
    rows: list[Check],
    idata,
    model_path: str | Path | None,
    fit_path: str | Path | None,
    limits: dict[str, float] | None = None,
    model_label: str | None = None,
) -> list[Check]:
    """`rows` (one variant's, from `evaluate`) with each failure's diagnosis attached.

    The diagnosis (mlm.diagnosis) reads the trace and model.py/fit.py; a failure it cannot
    explain keeps the fixed ADVICE. Never raises: a diagnosis that fails leaves `rows` as
    they were.
    """
    if all(r.passed for r in rows):
        return rows
    try:
        from mlm.diagnosis import diagnose

        findings = diagnose(idata, rows, model_path, fit_path, limits, model_label=model_label)
    except Exception:  # advice must never hide the verdict
        return rows
    return [
        replace(r, findings=tuple(f for f in findings if r.name in f.checks)) if not r.passed else r
        for r in rows
    ]


def advice_lines(rows: list[Check]) -> list[tuple[str, str]]:
    """(variant, advice) once per distinct finding of the failed rows, in check order, then
    the fixed advice of failures no finding explains."""
    lines: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if row.passed:
            continue
        texts = [f.message() for f in row.findings] or [f"{row.name}: {ADVICE[row.name]}"]
        for text in texts:
            if (row.variant, text) not in seen:
                seen.add((row.variant, text))
                lines.append((row.variant, text))
    return lines
