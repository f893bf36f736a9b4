"""A study's numbers: each replicate's posterior summary, and their aggregate per design
point and parameter (bias, RMSE, coverage, power, SBC ranks), each with its Monte Carlo
standard error."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlm.fingerprint import digest

if TYPE_CHECKING:
    from mlm.study.worker import ModelShape


def elements(name: str, values, labels):
    import numpy as np

    values = np.asarray(values)
    if values.ndim == 0:
        yield name, values
        return
    flat = values.reshape(-1)
    for i, element in enumerate(flat):
        label = labels[i] if labels is not None and values.ndim == 1 else str(i)
        yield f"{name}[{label}]", element


def summarize(trace, shape: ModelShape, truth: dict, settings: dict) -> dict:
    """Posterior mean, sd, interval, hit and rank of each summarized element; diagnostics."""
    import arviz as az
    import numpy as np

    posterior = trace["posterior"].to_dataset()
    tail = (1 - settings["interval"]) / 2
    n_rank = settings["sbc_draws"]
    rows = {}
    for name in shape.summarized:
        if name not in posterior:
            continue
        draws = posterior[name].values  # (chain, draw, ...)
        flat = draws.reshape(draws.shape[0] * draws.shape[1], -1)
        if flat.shape[1] > settings["max_size"]:
            continue
        labels = shape.coords.get(name)
        for j in range(flat.shape[1]):
            label = (
                (f"{name}[{labels[j]}]" if labels is not None else f"{name}[{j}]")
                if flat.shape[1] > 1 or draws.ndim > 2
                else name
            )
            x = flat[:, j]
            lower, upper = np.quantile(x, [tail, 1 - tail])
            row = {
                "mean": float(x.mean()),
                "sd": float(x.std(ddof=1)),
                "lower": float(lower),
                "upper": float(upper),
                "excludes_zero": bool(lower > 0 or upper < 0),
            }
            if label in truth:
                t = truth[label]
                thinned = x[np.linspace(0, x.size - 1, n_rank).round().astype(int)]
                row.update(
                    truth=t, covered=bool(lower <= t <= upper), rank=int((thinned < t).sum())
                )
            rows[label] = row
    stats = trace["sample_stats"].to_dataset()
    r_hat = az.rhat(posterior)
    ess = az.ess(posterior, method="bulk")
    return {
        "parameters": rows,
        "diagnostics": {
            "divergences": int(stats["diverging"].values.sum()),
            "max_r_hat": float(max(float(r_hat[v].max()) for v in r_hat.data_vars)),
            "min_ess_bulk": float(min(float(ess[v].min()) for v in ess.data_vars)),
        },
    }


def aggregate(records: list[dict], interval: float = 0.9) -> list[dict]:
    """One row per design point and parameter, each estimate with its Monte Carlo error."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for record in records:
        for name, row in record["parameters"].items():
            groups.setdefault((digest(record["design"]), name), []).append(
                {**row, "design": record["design"]}
            )
    rows = []
    for (_, name), items in groups.items():
        n = len(items)
        power = float(np.mean([i["excludes_zero"] for i in items]))
        row = {
            "design": items[0]["design"],
            "parameter": name,
            "n": n,
            "power": power,
            "power_se": math.sqrt(power * (1 - power) / n),
        }
        if all("truth" in i for i in items):
            error = np.array([i["mean"] - i["truth"] for i in items])
            rmse = float(np.sqrt(np.mean(error**2)))
            hits = int(sum(i["covered"] for i in items))
            coverage = hits / n
            row.update(
                # One truth per design point, or (SBC) the mean of the prior's draws.
                truth=_common([i["truth"] for i in items]),
                bias=float(error.mean()),
                bias_se=float(error.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
                rmse=rmse,
                rmse_se=float(np.std(error**2, ddof=1) / (2 * rmse * math.sqrt(n)))
                if n > 1 and rmse > 0
                else float("nan"),
                coverage=coverage,
                coverage_se=math.sqrt(interval * (1 - interval) / n),
                coverage_interval=list(wilson(hits, n)),
                ranks=[i["rank"] for i in items],
            )
        rows.append(row)
    return rows


def _common(values: list[float]) -> float:
    return values[0] if len(set(values)) == 1 else float(sum(values) / len(values))


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of a binomial proportion."""
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rank_uniformity(ranks: list[int], n_ranks: int, bins: int = 10) -> float:
    """The chi-square test's p-value that SBC ranks (0..n_ranks) are uniform."""
    import numpy as np
    from scipy import stats

    counts = np.histogram(ranks, bins=bins, range=(0, n_ranks + 1))[0]
    return float(stats.chisquare(counts).pvalue)


def label(row: dict) -> str:
    design = " ".join(f"{k}={v}" for k, v in row["design"].items())
    return f"{row['parameter']} {design}".strip()
