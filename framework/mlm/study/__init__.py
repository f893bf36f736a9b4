"""Simulation studies: many fits of simulated data, for power and calibration of a design.

A study draws datasets with the project's `data.simulate(rng, **truth)` (or, with no
truth, from the model's prior predictive: simulation-based calibration), fits each with
the project's model, and keeps one small JSON summary per replicate (posterior means,
interval endpoints, SBC ranks, diagnostics, seeds) in the store; the traces are dropped.

    design   what to simulate and how to fit it (Study), and its key
    runner   the client: which replicates are missing, local or Dask execution
    worker   one replicate on a worker, the compiled model reused between replicates
    summary  a replicate's posterior summary and the aggregate with Monte Carlo errors
    figures  coverage, SBC ranks and power curves
    result   what Project.study returns
"""

from mlm.study.design import DEFAULTS, Study, parse_values, study_for
from mlm.study.result import StudyResult
from mlm.study.runner import run_study
from mlm.study.summary import aggregate, rank_uniformity, wilson

__all__ = [
    "DEFAULTS",
    "Study",
    "StudyResult",
    "aggregate",
    "parse_values",
    "rank_uniformity",
    "run_study",
    "study_for",
    "wilson",
]
