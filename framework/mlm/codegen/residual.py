"""The residual distribution's parameters: sigma (one, log-linear in `--sigma`'s terms,
or one per level of its column when `--prior` sets sigma), student_t's nu, and the shape
or precision of the negative binomial, gamma and beta, and the zero-inflation probability."""

from __future__ import annotations

from mlm.codegen.body import BuildBody
from mlm.codegen.names import joined
from mlm.errors import MlmError
from mlm.formula import Term

# A residual SD per level of a numeric --sigma column: at most this many distinct values.
MAX_SIGMA_LEVELS = 20


def varying_sigma(body: BuildBody) -> tuple[str | None, str]:
    """(log(sigma)'s linear predictor or None, the likelihood's sigma) for `--sigma`.

    Without `--sigma`: (None, "sigma"), the scalar `constant_parameters` writes.
    """
    terms = body.spec.sigma
    if terms and "sigma" in body.given:
        return None, sigma_by_level(body, terms)
    if terms:
        return log_sigma(body, terms), "sigma"
    return None, "sigma"


def constant_parameters(body: BuildBody) -> list[str]:
    """The lines of the family's scalar parameters: sigma when it does not vary, nu."""
    family, lines = body.spec.family, []
    if family in ("gaussian", "student_t") and body.spec.sigma is None:
        why = "The residual SD; its prior mean is the outcome's SD."
        lines += body.rv("sigma", "Exponential", f"lam=1 / {body.y_sd}", why, kind="sd")
    if family == "lognormal" and body.spec.sigma is None:
        why = "The residual SD of log(y); its prior mean is the SD of log(y)."
        lines += body.rv("sigma", "Exponential", f"lam=1 / {body.y_sd}", why, kind="sd")
    if family == "student_t":
        why = "Degrees of freedom of the t residuals (Juarez and Steel's prior)."
        lines += body.rv("nu", "Gamma", "alpha=2, beta=0.1", why, kind="positive")
    if family.startswith("zero_inflated"):
        why = (
            "zi: the probability that a row is a structural zero, whatever its predictors; "
            "brms's default prior, uniform."
        )
        lines += body.rv("zi", "Beta", "alpha=1, beta=1", why, kind="probability")
    if family in ("negbinomial", "zero_inflated_negbinomial"):
        why = (
            "theta: the negative binomial's shape (variance mu + mu^2 / theta, lme4's theta); "
            "brms's default prior, wide from strong overdispersion to nearly Poisson."
        )
        lines += body.rv("theta", "Gamma", "alpha=0.01, beta=0.01", why, kind="positive")
    if family == "gamma":
        why = (
            "shape: the gamma's shape (variance mean^2 / shape; 1 / shape is glmer's "
            "dispersion); brms's default prior, wide from very skewed to nearly normal."
        )
        lines += body.rv("shape", "Gamma", "alpha=0.01, beta=0.01", why, kind="positive")
    if family == "beta":
        why = (
            "phi: the beta's precision (variance mean (1 - mean) / (1 + phi)); log-normal "
            "around 10, 95 % between 0.2 and 500: from U-shaped to tightly around the mean. "
            "(brms's gamma(0.01, 0.01) puts half its mass below 1e-30, where PyMC's beta "
            "draws, for prior checks and predictions, stall.)"
        )
        lines += body.rv("phi", "LogNormal", "mu=np.log(10), sigma=2", why, kind="positive")
    return lines


def log_sigma(body: BuildBody, terms: tuple[Term, ...]) -> str:
    """Write the priors of log(sigma)'s coefficients; return its linear predictor."""
    parts = []
    named = " + ".join(t.label for t in terms if not t.is_intercept) or "nothing"
    body.priors += ["", f"# The residual SD varies: log(sigma) is linear in {named}."]
    for term in terms:
        if term.is_intercept:
            why = f"log_sigma_Intercept: around the log of {body.outcome_sd}."
            args = f"mu=np.log({body.y_sd}), sigma=1"
            body.priors += body.rv("log_sigma_Intercept", "Normal", args, why)
            parts.append("log_sigma_Intercept")
            continue
        cats = [v for v in term.variables if v in body.columns.categorical]
        tensors, arrays = body.product(term.variables)
        name = f"log_sigma_{joined(term.variables)}"
        scale = f"1 / {body.sd(arrays)}" if arrays else "1"
        why = f"{name}: sigma may change by a factor of about e (2.7) per " + (
            f"SD of {term.label}." if arrays else "level."
        )
        if not cats:
            body.priors += body.rv(name, "Normal", f"mu=0, sigma={scale}", why)
            parts.append(f"{name} * {tensors}")
            continue
        if len(cats) > 1:
            raise MlmError("--sigma: interactions of two categorical columns are not supported")
        index = body.factor((cats[0],), True)
        dims = f'"{cats[0]}_effect"'
        body.priors += body.rv(name, "Normal", f"mu=0, sigma={scale}", why, dims=dims)
        effect = f"pt.concatenate([pt.zeros(1), {name}])[{index}]"
        parts.append(f"{effect} * {tensors}" if tensors else effect)
    column = level_column(terms)
    if column and (
        column in body.columns.categorical
        or body.columns.distinct.get(column, 0) <= MAX_SIGMA_LEVELS
    ):
        body.names.append(f"sigma (one per level of {column}, in place of log_sigma_*)")
    return " + ".join(parts) or "0"


def sigma_by_level(body: BuildBody, terms: tuple[Term, ...]) -> str:
    """One residual SD per level of the --sigma column, with the prior --prior gave it.

    Returns the likelihood's sigma: `sigma[column_]`, or `sigma` for `--sigma "~ 1"`.
    """
    prior = body.given["sigma"]
    log_names = [f"log_sigma_{joined(t.variables) or 'Intercept'}" for t in terms]
    column = level_column(terms)
    levels = body.columns.distinct.get(column, 0)
    if column is None or (
        column and column not in body.columns.categorical and levels > MAX_SIGMA_LEVELS
    ):
        numeric = f" ({column!r} is numeric, with {levels} distinct values)" if column else ""
        raise MlmError(
            f"--prior {prior.source!r}: a prior on sigma with --sigma means one sigma per "
            "level of its column, which must be one column with a few levels (as in "
            f"'~ condition'); {body.spec.sigma_source!r} is not{numeric}. Set priors on "
            f"{', '.join(log_names)} instead, or make a text column of the levels in data.py"
        )
    clash = [p.source for p in body.spec.priors if p.name.startswith("log_sigma_")]
    if clash:
        raise MlmError(
            f"--prior {prior.source!r} gives one sigma per level, in place of "
            f"{', '.join(log_names)}: drop --prior {', '.join(map(repr, clash))}"
        )
    body.names.append("sigma")
    default = f"log(sigma) linear in {column or '1'}"
    if not column:
        body.priors += ["", *body.given_prior("sigma", "sigma", "", "sd", default)]
        return "sigma"
    index = body.factor((column,), False)
    coord = body.level_coord(column)
    values = f", its {levels} distinct values" if column in body.columns.numeric else ""
    body.priors += [
        "",
        f'# The residual SD: one per level of {column} (coords "{coord}": every level{values}).',
        *body.given_prior("sigma", "sigma", f'"{coord}"', "sd", default),
    ]
    return f"sigma[{index}]"


def level_column(terms: tuple[Term, ...]) -> str | None:
    """The column of a --sigma formula `~ column` ("" for `~ 1`); None for any other formula."""
    rest = [t for t in terms if not t.is_intercept]
    if not rest:
        return ""
    if len(rest) == 1 and len(rest[0].variables) == 1:
        return rest[0].variables[0]
    return None
