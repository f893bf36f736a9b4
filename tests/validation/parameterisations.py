"""Measure parameterisations of the generated models: the numbers behind codegen's rule.

For each data set (the corpus, plus the template's schools and a sparse simulated one) and
each option, writes model.py as `mlm new --formula` would with the option forced, samples it
as the generated fit.py does (4 chains of 1000 draws after 1000 tuning steps, nutpie, the
template's seed) and prints one row: sampling seconds, the worst bulk and tail ESS, bulk
ESS per second, the largest r_hat, divergences, and whether `mlm check`'s default
thresholds pass.

    python tests/validation/parameterisations.py [OPTION ...] [--cases NAME ...]

OPTION is one of OPTIONS below; docs/validation.md holds the table this printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from validation.corpus import BY_NAME, DATA

SEED = 20111130  # the template's seed (mlm.toml)
TEMPLATE = (
    Path(__file__).resolve().parents[2]
    / "project_template"
    / "{{cookiecutter.project_slug}}"
    / "data"
    / "scores.csv"
)

# option -> (centre population predictors, group terms: "auto" | "noncentred" | "centred",
#            centre one intercept group term on the intercept, nutpie adaptation[, partly
#            centred correlated terms (groups.PARTIAL), target_accept, draws per chain])
# (Options that sampled a correlated term's slopes at their centres with the covariance's
# prior there, a switch groups.py no longer has, are gone; docs/validation.md keeps their
# numbers.)
# The "rule:..." options sample as the template's fit.py does today (low rank,
# target_accept 0.95, 2,000 draws per chain) with one centring rule of groups.MODE.
FIT = ("low_rank", True, 0.95, 2000)
OPTIONS = {
    "today": (False, "noncentred", False, "diag"),
    "today+lowrank": (False, "noncentred", False, "low_rank"),
    "pop": (True, "noncentred", False, "diag"),
    "pop+centred": (True, "centred", False, "diag"),
    "pop+centred_on_intercept": (True, "centred", True, "diag"),
    "auto": (True, "auto", False, "diag"),
    "auto+on_intercept": (True, "auto", True, "diag"),
    "auto+lowrank": (True, "auto", False, "low_rank"),
    "auto+on_intercept+lowrank": (True, "auto", True, "low_rank"),
    "auto+on_intercept+ta90": (True, "auto", True, "diag", False, 0.9),
    "pop+lowrank": (True, "noncentred", False, "low_rank"),
    "rule:info": (True, "auto", True, *FIT),
    "rule:rows": (True, "rows", True, *FIT),
    "rule:info_point": (True, "info_point", True, *FIT),
    "rule:rows+levels": (True, "rows+levels", True, *FIT),
    "rule:info+diag": (True, "auto", True, "diag", *FIT[1:]),
    "rule:info-partial": (True, "auto", True, FIT[0], False, *FIT[2:]),
}


def sparse() -> pd.DataFrame:
    """40 groups of 3 rows, a group SD a fifth of the residual's: the funnel case."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(40), 3)
    x = rng.normal(5, 2, g.size)
    y = 2 + 0.5 * x + rng.normal(0, 0.2, 40)[g] + rng.normal(0, 1, g.size)
    return pd.DataFrame({"y": y.round(4), "x": x.round(4), "g": [f"g{v}" for v in g]})


def cases() -> dict[str, tuple[str, pd.DataFrame, str | None]]:
    out = {
        name: (case.formula, pd.read_csv(DATA / case.csv), case.family)
        for name, case in BY_NAME.items()
    }
    out["schools"] = ("score ~ hours + (1 | school)", pd.read_csv(TEMPLATE), None)
    out["sparse"] = ("y ~ x + (1 | g)", sparse(), None)
    return out


def source(formula, data, family, option) -> str:
    from mlm.codegen import columns, groups
    from mlm.codegen.writer import model_source
    from mlm.formula import parse

    centre, mode, on_intercept, _, partial, _ = (*OPTIONS[option], False, None)[:6]
    saved = columns.centre_of, groups.MODE, groups.ON_INTERCEPT, groups.PARTIAL
    try:
        if not centre:
            columns.centre_of = lambda values: None
        groups.MODE, groups.ON_INTERCEPT, groups.PARTIAL = mode, on_intercept, partial
        return model_source(parse(formula, family=family), data)
    finally:
        columns.centre_of, groups.MODE, groups.ON_INTERCEPT, groups.PARTIAL = saved


def measure(name: str, option: str) -> dict:
    import pymc as pm

    from mlm import compiled
    from mlm.check import DEFAULT_THRESHOLDS, evaluate
    from mlm.check import measure as numbers_of

    formula, data, family = cases()[name]
    text = source(formula, data, family, option)
    namespace: dict = {}
    exec(compile(text, f"{name}.py", "exec"), namespace)
    model = namespace["build"](data)
    adaptation = OPTIONS[option][3]
    kwargs = {} if adaptation == "diag" else {"nuts_sampler_kwargs": {"adaptation": adaptation}}
    target_accept, draws = (*OPTIONS[option], False, None, 1000)[5:7]
    if target_accept:
        kwargs["target_accept"] = target_accept
    with model, compiled.persistent():
        idata = pm.sample(
            draws=draws, tune=1000, chains=4, random_seed=SEED, progressbar=False, **kwargs
        )
    seconds = float(idata["posterior"].attrs.get("sampling_time", np.nan))
    numbers = numbers_of(idata)
    rows = evaluate(name, numbers, dict(DEFAULT_THRESHOLDS))
    intercept = idata["posterior"].get("Intercept")
    return {
        "case": name,
        "option": option,
        "seconds": seconds,
        "ess_bulk": numbers.get("min_ess_bulk"),
        "ess_bulk_at": numbers.get("min_ess_bulk_at"),
        "ess_tail": numbers.get("min_ess_tail"),
        "ess_per_s": numbers.get("min_ess_bulk", np.nan) / seconds,
        "r_hat": numbers.get("max_r_hat"),
        "divergences": numbers.get("divergences"),
        "passed": all(r.passed for r in rows),
        "failed": [r.name for r in rows if not r.passed],
        "intercept": None if intercept is None else float(intercept.mean()),
    }


def main(argv: list[str]) -> None:
    options, names = argv, list(cases())
    if "--cases" in argv:
        at = argv.index("--cases")
        options, names = argv[:at], argv[at + 1 :]
    for option in options or list(OPTIONS):
        for name in names:
            row = measure(name, option)
            print(
                f"| {name} | {option} | {row['ess_bulk']:.0f} ({row['ess_bulk_at']}) | "
                f"{row['ess_tail']:.0f} | {row['ess_per_s']:.0f} | {row['r_hat']:.3f} | "
                f"{row['divergences']} | {'pass' if row['passed'] else 'FAIL'} | "
                f"{row['seconds']:.1f} s |",
                flush=True,
            )
            print(json.dumps(row), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
