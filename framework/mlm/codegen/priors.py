"""Priors set with `--prior`, validated against PyMC.

The distribution must exist, be continuous and univariate, take the arguments given, and
put no mass below 0 when the parameter is an SD. PyMC is imported only when a prior is given.
"""

from __future__ import annotations

from mlm.errors import MlmError
from mlm.formula import Prior


def prior_arguments(prior: Prior, kind: str) -> str:
    """The keyword arguments of `prior`'s PyMC distribution, validated, as code: "alpha=1, beta=1".

    `kind` is what the parameter is: "real", "positive" (nu), "probability" (zi) or "sd" (a
    standard deviation, the only kind whose prior may be on its variance).
    """
    import inspect

    import numpy as np
    import pymc as pm

    where = f"--prior {prior.source!r}"
    if prior.variance and kind != "sd":
        raise MlmError(
            f"{where}: only a standard deviation (sigma, sigma_*) takes a prior on its "
            f"variance; {prior.name} is not one. Write {prior.name}=..."
        )
    dist = getattr(pm, prior.distribution, None)
    if not _is_distribution(dist, pm):
        import difflib

        known = [n for n in dir(pm) if _is_distribution(getattr(pm, n, None), pm)]
        close = difflib.get_close_matches(prior.distribution, known, n=3)
        raise MlmError(
            f"{where}: PyMC has no distribution {prior.distribution!r}"
            + (f"; did you mean {' or '.join(close)}?" if close else "")
        )
    if issubclass(dist, pm.Discrete):
        raise MlmError(
            f"{where}: {prior.distribution} is discrete; a parameter's prior must be continuous"
        )
    named = [
        p
        for p in inspect.signature(dist.dist).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    try:
        bound = inspect.Signature(named).bind(*prior.args, **dict(prior.kwargs))
    except TypeError as exc:
        raise MlmError(
            f"{where}: {prior.distribution} takes {', '.join(p.name for p in named)}; {exc}"
        ) from None
    arguments = ", ".join(f"{k}={v!r}" for k, v in bound.arguments.items())
    shown = f"{prior.distribution}({arguments})"
    try:
        rv = dist.dist(**bound.arguments)
    except Exception as exc:
        raise MlmError(f"{where}: PyMC cannot make {shown}: {exc}") from None
    if getattr(rv.owner.op, "ndim_supp", 0):
        raise MlmError(f"{where}: {prior.distribution} is multivariate; give a univariate prior")
    if kind == "probability" and np.isfinite(pm.logp(rv, [-1.0, 2.0]).eval()).any():
        raise MlmError(
            f"{where}: {prior.name} is a probability, but {shown} puts mass outside (0, 1); "
            "use Beta or Uniform(0, 1)"
        )
    if kind != "real" and np.isfinite(pm.logp(rv, -1.0).eval()).any():
        what = {"sd": " is a standard deviation and", "positive": ""}[kind]
        if prior.variance:
            what = "^2 is a variance and"
        half = f"Half{prior.distribution}"
        better = ["HalfNormal", "Exponential"]
        if half not in better and _is_distribution(getattr(pm, half, None), pm):
            better.insert(0, half)  # HalfCauchy for Cauchy, HalfStudentT for StudentT
        raise MlmError(
            f"{where}: {prior.name}{what} must be positive, but {shown} puts mass on "
            f"negative values; use a positive distribution such as {', '.join(better)}, "
            "Gamma or Uniform(0, upper)"
        )
    return arguments


def _is_distribution(value, pm) -> bool:
    return isinstance(value, type) and issubclass(value, pm.Distribution)
