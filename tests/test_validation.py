"""The validation corpus: classic published mixed-model fits, refitted as a new user would.

For each data set of tests/validation/data/ (sources and references in its README.md):
`mlm new NAME --formula "..." --data FILE.csv`, `mlm run fit`, `mlm check` through the real
command line, with the generated model.py and fit.py as they are. Then:

- every published fixed effect lies within 0.5 posterior SD of the posterior mean,
- the published residual SD within 15 % of the posterior mean,
- `mlm check` passes with its default thresholds. Where it does not today, the test is an
  xfail(strict=True) naming the measured cause (issue 12 item 1 is to fix the generated
  models; a fix turns the xfail into an XPASS, which fails until the mark is removed).

docs/validation.md holds the table of results (regenerate its rows with
`python tests/validation/corpus.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from validation.corpus import CASES, Case, run_case

pytestmark = pytest.mark.slow

# Measured with the generated defaults (4 chains of 1000 draws, seed 20111130); see
# docs/validation.md for the numbers and the diagnosis `mlm check` gives.
FAILS_CHECK = {
    "penicillin": "11-13 divergences, r_hat 1.05-1.08 and bulk ESS 45-110 on the sample "
    "effects: 6 samples of 24 rows each, Intercept and the mean of u_sample form a ridge "
    "(correlation -0.98)",
    "exam": "bulk ESS 356 < 400 at Intercept: 65 schools of ~62 pupils, Intercept and the "
    "mean of u_school form a ridge (correlation -0.94)",
    "orthodont": "10 divergences and bulk ESS ~380 at sigma_Subject[age]: age (8-14) is "
    "uncentred under a random slope",
}

_results: dict[str, dict] = {}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def result(case: Case, parent: Path) -> dict:
    if case.name not in _results:
        _results[case.name] = run_case(case, parent)
    return _results[case.name]


def with_check_marks(cases):
    for case in cases:
        marks = (
            [pytest.mark.xfail(strict=True, reason=FAILS_CHECK[case.name])]
            if case.name in FAILS_CHECK
            else []
        )
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_published_estimates_are_recovered(case: Case, corpus_dir: Path):
    got = result(case, corpus_dir)["estimates"]
    for name, (published, reference) in case.fixed.items():
        e = got[name]
        assert abs(e["mean"] - published) <= 0.5 * e["sd"], (name, published, reference, e)
    if case.residual_sd:
        published, reference = case.residual_sd
        mean = got["sigma"]["mean"]
        assert abs(mean - published) <= 0.15 * published, (published, reference, mean)


@pytest.mark.parametrize("case", list(with_check_marks(CASES)))
def test_mlm_check_passes_with_default_thresholds(case: Case, corpus_dir: Path):
    got = result(case, corpus_dir)
    assert got["check_passed"], got["check_output"] + "\n".join(got["advice"])
