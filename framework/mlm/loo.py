"""PSIS-LOO of a trace that stores no log-likelihood, evaluated a chunk of rows at a time.

A stored pointwise log-likelihood holds one value per posterior draw and row: 32 GB for
4,000 draws of a million rows. PSIS-LOO smooths the importance weights of each row on
its own, so the rows can be taken a chunk at a time and the result is exact: for each
chunk, the model's per-row pm.Data (those along the observed variable's first dim) are
swapped for the chunk's rows, the observed variable's elementwise log-density is
evaluated at every posterior draw, and the chunk's draws x rows block is reduced to one
elpd, p_loo and Pareto k per row (`psis_loo`: arviz_stats' PSIS-LOO, its sums over
the draws taken for many rows at once) and dropped. At most `CHUNK_VALUES`
log-densities are held at once.

A model whose rows do not all enter through pm.Data along that dim (a NumPy array in
the graph, say) is evaluated in one piece, as pm.compute_log_likelihood would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mlm import progress
from mlm.errors import MlmError

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr

# Draws x rows of log-density held at once: 160 MB of float64 (about 5,000 rows of a
# 4,000-draw trace). PSIS-LOO reduces it a slice of PSIS_VALUES at a time.
CHUNK_VALUES = 20_000_000
# Log-likelihoods whose rows are reduced together (`psis_loo`): 8 MB, which stays in the
# processor's cache (250 rows at 4,000 draws; 4,096 rows at 4,000 draws ran 3x slower).
PSIS_VALUES = 1_000_000


def pointwise(
    model: pm.Model,
    posterior: xr.Dataset,
    rows_per_chunk: int | None = None,
    say: Callable[[str], None] | None = None,
) -> xr.Dataset:
    """Per row: `elpd_i`, `p_loo_i` and `pareto_k` of the model's one observed variable,
    from the posterior draws; attrs `n_samples`, `r_eff` and `observed` (its name)."""
    import arviz_stats  # noqa: F401  (the .azstats accessor)
    import xarray as xr
    from pymc.model.transform.conditioning import remove_value_transforms

    if len(model.observed_RVs) != 1:
        names = ", ".join(v.name for v in model.observed_RVs) or "none"
        raise MlmError(
            f"LOO needs exactly one observed variable; the model has {names}: compute the "
            "log-likelihood in fit.py (`pm.compute_log_likelihood(idata)`) and name the one "
            "to compare"
        )
    # The posterior holds untransformed values (sigma, not log(sigma)), as in PyMC's
    # compute_log_likelihood. The copy has its own pm.Data, so the model is not touched.
    umodel = remove_value_transforms(model)
    observed = umodel.observed_RVs[0]
    logp = umodel.logp(vars=[observed], sum=False)[0]
    function = umodel.compile_fn(
        outs=logp, inputs=umodel.value_vars, on_unused_input="ignore", point_fn=False
    )
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    n_samples = chains * draws
    values = [_draws(posterior, var, n_samples) for var in umodel.value_vars]

    row_dim, rows, per_row = _rows(umodel, observed)
    labels = umodel.coords.get(row_dim) if row_dim else None
    if labels is None or len(labels) != rows:
        labels = np.arange(rows)
    r_eff = _r_eff(posterior, n_samples)
    size = rows_per_chunk or max(1, CHUNK_VALUES // n_samples)
    evaluate = _Chunks(function, values, (chains, draws), row_dim or "obs", labels, r_eff)
    if per_row and size < rows:
        try:
            parts = evaluate(size, per_row, umodel.dim_lengths.get(row_dim), say)
        except _RowsNotSwappable:
            if say:
                say("the model's rows are not all pm.Data along its observed dim: in one piece")
            parts = evaluate(rows, [], None, None)
    else:
        parts = evaluate(rows, [], None, None)
    result = xr.concat(parts, dim=row_dim or "obs") if len(parts) > 1 else parts[0]
    result.attrs.update(n_samples=n_samples, r_eff=float(r_eff), observed=observed.name)
    return result


def elpd_data(points: xr.Dataset):
    """The arviz_stats ELPDDataLOO of `pointwise`'s result: what az.loo(idata,
    pointwise=True) returns for the same log-likelihood, for az.compare."""
    from arviz_stats import ELPDDataLOO

    elpd_i, pareto_k = points["elpd_i"], points["pareto_k"]
    elpd, se, p_loo, _ = elpd_i.azstats.loo_summary(points["p_loo_i"])
    n_samples = int(points.attrs["n_samples"])
    # arviz_stats' threshold for a reliable Pareto k at this many draws (Vehtari et al. 2024).
    good_k = min(1 - 1 / np.log10(n_samples), 0.7) if n_samples > 1 else 0.7
    return ELPDDataLOO(
        elpd=elpd,
        se=se,
        p=p_loo,
        n_samples=n_samples,
        n_data_points=int(elpd_i.size),
        scale="log",
        warning=bool((pareto_k > good_k).any()),
        good_k=good_k,
        elpd_i=elpd_i,
        pareto_k=pareto_k,
    )


class _RowsNotSwappable(Exception):
    """A chunk's log-density did not have one value per row of the chunk."""


class _Chunks:
    """Evaluates the pointwise LOO of all rows, `size` rows at a time."""

    def __init__(self, function, values, shape, dim, labels, r_eff):
        self.function, self.values, self.shape = function, values, shape
        self.dim, self.labels, self.r_eff = dim, np.asarray(labels), r_eff

    def __call__(self, size: int, per_row: list, length, say) -> list:
        rows = len(self.labels)
        chunks = range(0, rows, size)
        if say and len(chunks) > 1:
            say(f"log-likelihood of {rows:,} rows in {len(chunks)} chunks of {size:,}")
        full = {var: var.get_value(borrow=True) for var in per_row}
        try:
            # On a terminal, a bar of the rows done with the time left (nothing when piped).
            with progress.task(f"PSIS-LOO of {rows:,} rows", total=rows) as advance:
                parts = self._each(chunks, size, rows, full, length, advance)
        finally:
            for var, array in full.items():
                var.set_value(array)
            if full and hasattr(length, "set_value"):
                length.set_value(np.asarray(rows, dtype=length.dtype))
        return parts

    def _each(self, chunks: range, size: int, rows: int, full: dict, length, advance):
        """The chunks' pointwise values, each chunk's rows swapped into the model's data."""
        import xarray as xr

        parts = []
        for start in chunks:
            stop = min(start + size, rows)
            for var, array in full.items():
                var.set_value(array[start:stop])
            if full and hasattr(length, "set_value"):
                length.set_value(np.asarray(stop - start, dtype=length.dtype))
            elpd_i, pareto_k, p_loo_i = psis_loo(
                _log_density(self.function, self.values, stop - start), self.r_eff
            )
            coords = {self.dim: self.labels[start:stop]}
            parts.append(
                xr.Dataset(
                    {
                        name: xr.DataArray(values, dims=(self.dim,), coords=coords)
                        for name, values in (
                            ("elpd_i", elpd_i),
                            ("p_loo_i", p_loo_i),
                            ("pareto_k", pareto_k),
                        )
                    }
                )
            )
            advance(stop - start)
        return parts


def psis_loo(log_lik: np.ndarray, r_eff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a draws x rows block of log-likelihoods: elpd_i, Pareto k and p_loo_i,
    exactly as arviz_stats' loo computes them (its `_loo`), to the last bit.

    Its loo runs, one row at a time, the Pareto smoothing (`psislw`) and then two
    log-sum-exps over the draws. Here the smoothing is arviz_stats' own psislw (what
    `.azstats.psislw` calls) over `PSIS_VALUES // draws` rows at a time, still a loop per
    row inside it (it has no whole-block form), and the two sums are scipy's logsumexp,
    the one it calls, over those rows at once: they were about 40 % of its time at 400
    draws (benchmarks/loo_profile.py). Slices of rows keep the copies small and in cache.
    """
    from arviz_stats.base import array_stats
    from scipy.special import logsumexp

    draws, rows = log_lik.shape
    step = max(1, PSIS_VALUES // draws)
    elpd_i, pareto_k, p_loo_i = np.empty(rows), np.empty(rows), np.empty(rows)
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        part = np.ascontiguousarray(log_lik[:, start:stop].T)  # a row's draws contiguous
        log_weights, pareto_k[start:stop] = array_stats.psislw(part, r_eff=r_eff, axis=-1)
        log_weights += part  # lw + ll, the terms of elpd_i
        elpd_i[start:stop] = logsumexp(log_weights, axis=-1)
        p_loo_i[start:stop] = logsumexp(part, b=1 / draws, axis=-1) - elpd_i[start:stop]
    return elpd_i, pareto_k, p_loo_i


def _rows(umodel, observed) -> tuple[str | None, int, list]:
    """The observed variable's row dim, its number of rows, and the pm.Data along it
    (empty when the observed values are not among them: then nothing can be swapped)."""
    value = umodel.rvs_to_values[observed]
    dims = umodel.named_vars_to_dims.get(observed.name) or ()
    rows = int(
        np.shape(value.get_value(borrow=True) if hasattr(value, "get_value") else value.data)[0]
    )
    if not dims:
        return None, rows, []
    row_dim = dims[0]
    per_row = [
        var
        for var in umodel.data_vars
        if (umodel.named_vars_to_dims.get(var.name) or (None,))[0] == row_dim
        and hasattr(var, "set_value")
    ]
    if not any(var is value for var in per_row):
        return row_dim, rows, []
    return row_dim, rows, per_row


def _draws(posterior: xr.Dataset, var, n_samples: int) -> np.ndarray:
    """The posterior draws of value variable `var`, one row per draw, in its dtype."""
    if var.name not in posterior:
        raise MlmError(
            f"the trace has no posterior draws of {var.name!r}, a variable of the model: was it "
            "fitted with another model.py?"
        )
    array = posterior[var.name].to_numpy()
    return np.ascontiguousarray(array.reshape(n_samples, *array.shape[2:]), dtype=var.dtype)


def _log_density(function, values: list[np.ndarray], rows: int) -> np.ndarray:
    """Draws x rows of the observed variable's log-density, one call per draw."""
    out = np.empty((values[0].shape[0] if values else 1, rows))
    for s in range(out.shape[0]):
        try:
            row = function(*(v[s] for v in values))
        except ValueError as exc:  # a NumPy array of all rows against a chunk's pm.Data
            raise _RowsNotSwappable(str(exc)) from exc
        if np.shape(row) != (rows,):
            raise _RowsNotSwappable(f"shape {np.shape(row)} for {rows} rows")
        out[s] = row
    return out


def _r_eff(posterior: xr.Dataset, n_samples: int) -> float:
    """Relative efficiency of the draws, as az.loo estimates it (mean ESS / draws)."""
    if posterior.sizes["chain"] == 1:
        return 1.0
    ess = posterior.azstats.ess(method="mean")
    return float(np.hstack([ess[v].to_numpy().ravel() for v in ess.data_vars]).mean() / n_samples)
