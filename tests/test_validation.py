"""The validation corpus: classic published mixed-model fits, refitted as a new user would.

For each data set of tests/validation/data/ (sources and references in its README.md):
`mlm new NAME --formula "..." --data FILE.csv`, `mlm run fit`, `mlm check` through the real
command line, with the generated model.py and fit.py as they are. Then:

- every published fixed effect lies within 0.5 posterior SD of the posterior mean,
- the published residual SD within 15 % of the posterior mean,
- `mlm check` passes with its default thresholds (a case that does not is an xfail in
  FAILS_CHECK naming the measured cause).

docs/validation.md holds the table of results (regenerate its rows with
`python tests/validation/corpus.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from validation.corpus import CASES, Case, run_case

pytestmark = pytest.mark.slow

# Cases that fail `mlm check` with the generated defaults, as xfail naming the measured
# cause (docs/validation.md). strict=True where the failure is certain (a fix shows up as an
# XPASS, which fails the suite until the mark is removed); strict=False where the verdict
# depends on the draws: PyTensor's compiled code differs between a cold and a warm cache, so
# one seed does not give one set of draws on every machine.
# None now: Orthodont and oats, which gave 1-2 divergences in 8,000 draws with the template's
# seed, pass since the generated fit.py samples again at target_accept 0.99 after
# divergences (docs/validation.md, "Divergences: sampled again").
FAILS_CHECK: dict[str, tuple[str, bool]] = {}

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
        marks = []
        if case.name in FAILS_CHECK:
            reason, strict = FAILS_CHECK[case.name]
            marks = [pytest.mark.xfail(strict=strict, reason=reason)]
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
