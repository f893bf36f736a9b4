"""The formula front end: lme4/Stata text -> model.py, checked against independent fits.

Fast tests pin the parser, the error messages and the generated code (golden files in
tests/golden/; regenerate them with MLM_UPDATE_GOLDEN=1 after an intended change).
Slow tests sample every generated model, compare posteriors with Bambi (and, for the
correlated intercept and slope, which Bambi does not model, statsmodels MixedLM), and
check that the example's formula, with the questioner's priors set by --prior,
reproduces example_project's posterior.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlm.codegen import formatted, model_source
from mlm.errors import MlmError
from mlm.formula import INTERCEPT, GroupTerm, Prior, Term, lme4_formula, parse, parse_prior

from conftest import FAST_FIT, REPO, model_body, run_mlm

GOLDEN = Path(__file__).parent / "golden"
EXAMPLE_CSV = REPO / "example_project" / "data" / "partially_clustered.csv"

# name -> (formula, --sigma, --family): together they use every supported term type.
FORMULAS = {
    # group intercepts
    "intercept_slope": ("y ~ x + (1 | g)", None, None),
    # intercept; numeric and categorical predictors; a*b interactions
    "interaction_star": ("y ~ x * a + a * b + (1 | g)", None, None),
    # a:b interaction without the categorical main effect
    "interaction_colon": ("y ~ x + x:a + (1 | g)", None, None),
    # no intercept (cell means of a); uncorrelated intercept and slope; nested cells; crossed
    "no_intercept": ("y ~ 0 + a + x + (1 + x || g) + (1 | g:k) + (1 | h)", None, None),
    # -1 for no intercept; nesting written with /
    "minus_one": ("y ~ -1 + x + (1 | g/k)", None, None),
    # correlated intercept and slope (LKJ)
    "correlated": ("y ~ x + (1 + x | g)", None, None),
    # group slopes without intercepts; log-linear residual SD
    "sigma_model": ("y ~ tx + (0 + tx | g)", "~ b", None),
    "student_t": ("y ~ x + (1 | g)", None, "student_t"),
    "bernoulli": ("yb ~ x + (1 | g)", None, "bernoulli"),
    "poisson": ("yc ~ x + (1 | g)", None, "poisson"),
    # --prior: variance-scale priors, one residual SD per level of b
    "sigma_by_level": ("y ~ tx + (0 + tx | g)", "~ b", None),
    # --prior: positional and keyword arguments, an LKJ's sd_dist, nu
    "priors_correlated": ("y ~ x + (1 + x | g)", None, "student_t"),
    # a factor inside group terms: treatment contrasts beside the intercept (correlated),
    # every level without it (independent, by ||)
    "factor_in_group": ("y ~ x + a + (1 + a | g) + (0 + b || h)", None, None),
    # lme4's calls: I(), a transform, factor() on a number, a chosen reference level
    "lme4_calls": (
        'y ~ I(x^2) + I(x - 10) + log(tx + 1) + factor(k) + C(a, Treatment("a2")) '
        "+ (1 + scale(x) || g)",
        None,
        None,
    ),
    # Stata's factor-variable notation: c.x##c.x, i.a#c.x, ib(last).b, a#b
    "stata_forms": ("mixed y c.x##c.x i.a#c.x ib(last).b a#k || g:, reml", None, None),
}
# name -> --prior texts of the formulas above that set priors.
PRIORS = {
    "sigma_by_level": (
        "Intercept=Normal(0, 100)",
        "b_tx=Normal(0, 100)",
        "sigma_g_tx^2=Gamma(1, 1)",
        "sigma**2=Uniform(0, 100)",
    ),
    "priors_correlated": (
        "b_x=StudentT(3, 0, sigma=2.5)",
        "sigma_g=Exponential(1)",
        "sigma=pm.HalfCauchy(beta=1)",
        "nu=Gamma(mu=10, sigma=5)",
    ),
}
# The questioner's priors (example_project/model.py) as --prior options.
ISSUE_PRIORS = (
    "Intercept=Normal(0, 100)",
    "b_tx=Normal(0, 100)",
    "sigma_group_tx^2=Gamma(1, 1)",
    "sigma^2=Uniform(0, 100)",
)


def simulate(seed: int = 7, n_groups: int = 24, per_group: int = 20) -> pd.DataFrame:
    """Data for every formula above: known effects of each term type."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    n = g.size
    h = rng.integers(0, 8, n)  # crossed with g
    k = rng.integers(0, 3, n)  # k within g: nested
    x = rng.normal(0, 1, n)
    a = rng.choice(["a1", "a2", "a3"], n)
    b = rng.choice(["hi", "lo"], n)
    tx = rng.integers(0, 2, n)
    u0, u1 = rng.normal(0, 0.7, n_groups), rng.normal(0, 0.4, n_groups)
    uh, uk = rng.normal(0, 0.5, 8), rng.normal(0, 0.4, (n_groups, 3))
    mu = (
        1
        + 0.5 * x
        + 0.8 * (a == "a2")
        - 0.4 * (a == "a3")
        + 0.3 * (b == "lo")
        + 0.4 * x * (a == "a2")
        + 0.6 * tx
        + u0[g]
        + u1[g] * x
        + uh[h]
        + uk[g, k]
    )
    sigma = np.where(b == "lo", 0.5, 0.9)
    eta = 0.4 * x + 0.6 * u0[g]
    return pd.DataFrame(
        {
            "y": (mu + rng.normal(0, 1, n) * sigma).round(4),
            "x": x.round(4),
            "tx": tx,
            "a": a,
            "b": b,
            "g": g,
            "h": h,
            "k": k,
            "yb": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int),
            "yc": rng.poisson(np.exp(0.5 + eta)),
        }
    )


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate()


def generate(name: str, data: pd.DataFrame) -> str:
    formula, sigma, family = FORMULAS[name]
    spec = parse(formula, sigma=sigma, family=family, priors=PRIORS.get(name, ()))
    return model_source(spec, data)


def example_frame() -> pd.DataFrame:
    """The example's CSV with tx, the 0/1 code of the treated arm."""
    frame = pd.read_csv(EXAMPLE_CSV)
    frame["tx"] = (frame["condition"] == "treated").astype(int)
    return frame


def build(source: str, data: pd.DataFrame):
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)
    return namespace["build"](data)


# parsing --------------------------------------------------------------------------------


def test_lme4_terms_parse_to_the_same_description_however_written():
    assert parse("y ~ 0 + x").terms == parse("y ~ -1 + x").terms == (Term(("x",)),)
    assert parse("y ~ a*b").terms == parse("y ~ a + b + a:b").terms
    assert parse("y ~ a*b").terms == (INTERCEPT, Term(("a",)), Term(("b",)), Term(("a", "b")))
    assert parse("y ~ x + (1 | a/b)").groups == parse("y ~ x + (1 | a) + (1 | a:b)").groups


def test_single_bar_correlates_and_double_bar_separates():
    (one,) = parse("y ~ x + (1 + x | g)").groups
    assert one == GroupTerm(("g",), (INTERCEPT, Term(("x",))), True)
    block = (INTERCEPT, Term(("x",)))  # || splits the bracket; each part remembers it
    assert parse("y ~ x + (1 + x || g)").groups == (
        GroupTerm(("g",), (INTERCEPT,), False, block=block),
        GroupTerm(("g",), (Term(("x",)),), False, block=block),
    )
    # One column: correlated with itself only, unless it is a factor whose levels lme4's |
    # correlates (the data say which).
    (slope,) = parse("y ~ x + (0 + x | g)").groups
    assert slope == GroupTerm(("g",), (Term(("x",)),), True)
    (intercept,) = parse("y ~ x + (1 | g)").groups
    assert intercept == GroupTerm(("g",), (INTERCEPT,), False)


def test_stata_mixed_reads_as_the_lme4_formula():
    issue = parse("mixed y tx || group: tx, nocons residuals(independent, by(tx))")
    assert issue == parse("y ~ tx + (0 + tx | group)", sigma="~ tx")
    assert parse("mixed y x || g: x, cov(un)") == parse("y ~ x + (1 + x | g)")
    assert parse("mixed y x || g: x") == parse("y ~ x + (1 + x || g)")  # Stata: independent
    assert parse("mixed y x || a: || b:") == parse("y ~ x + (1 | a/b)")
    assert parse("mixed y c.x##i.a, nocons").terms == parse("y ~ 0 + x*a").terms
    assert parse("melogit yb x || g:").family == "bernoulli"
    assert lme4_formula(issue) == "y ~ tx + (0 + tx | group)"


def test_stata_crossed_levels_read_as_lme4_crossed_terms():
    # _all is the whole sample: its R.a is (1 | a), and a level after it nests in nothing.
    assert parse("mixed y x || _all: R.a") == parse("y ~ x + (1 | a)")
    assert parse("mixed y x || _all: R.a || b:") == parse("y ~ x + (1 | a) + (1 | b)")
    assert parse("mixed y x || _all: R.a || _all: R.b") == parse("y ~ x + (1 | a) + (1 | b)")
    nested = parse("y ~ x + (1 | a) + (1 | b) + (1 | b:c)")
    assert parse("mixed y x || _all: R.a || b: || c:") == nested
    assert parse("mixed y x || _all: R.a, cov(identity)") == parse("y ~ x + (1 | a)")
    # R.x at a level is an intercept per level of x within each of its groups.
    assert parse("mixed y x || b: R.x") == parse("y ~ x + (1 | b:x)")
    assert parse("mixed y x || b: R.x || c:") == parse("y ~ x + (1 | b:x) + (1 | b:c)")


def test_stata_crossed_form_writes_the_lme4_crossed_model_py(data):
    stata = model_source(parse("mixed y x || _all: R.g || h:"), data)
    assert model_body(stata) == model_body(model_source(parse("y ~ x + (1 | g) + (1 | h)"), data))
    assert "which lme4 writes as\n\n    y ~ x + (1 | g) + (1 | h)\n" in stata


@pytest.mark.parametrize("priors", [(), ISSUE_PRIORS])
def test_stata_form_writes_the_same_model_py_as_the_lme4_form(priors):
    frame = example_frame()
    stata = parse(
        "mixed y tx || group: tx, nocons residuals(independent, by(condition))", priors=priors
    )
    lme4 = parse("y ~ tx + (0 + tx | group)", sigma="~ condition", priors=priors)
    written = model_source(stata, frame)
    assert model_body(written) == model_body(model_source(lme4, frame))
    # the docstring quotes the command as typed, then as lme4 writes it
    assert (
        "Written by `mlm` from the Stata command\n\n"
        "    mixed y tx || group: tx, nocons residuals(independent, by(condition))\n\n"
        "which lme4 writes as\n\n    y ~ tx + (0 + tx | group)\n"
    ) in written
    assert "from the formula (lme4 syntax)\n\n    y ~ tx" in model_source(lme4, frame)


@pytest.mark.parametrize(
    ("formula", "message", "pointed"),
    [
        ("y ~ x + (1 |)", "must read (terms | grouping column)", "(1 |)"),
        ("y ~ x + logit(z)", "is a function mlm does not read", "logit(z)"),
        ("y ~ x + poly(x, 2)", "write the powers out, x + I(x^2)", "poly(x, 2)"),
        ("y ~ x + C(a, Sum)", "treatment contrasts only", "C(a, Sum)"),
        ("y ~ x + (1 | g):x", "is a group term: add it to the formula on its own", "(1 | g)"),
        ("mixed y x || g: x, cov(exch)", "covariance(exchangeable) is not supported", "exch"),
        ("y ~ x | g", "must be in parentheses", "|"),
        ("y ~ (x + 1", "never closed", "(x + 1"),
        ("mixed y x || g: x, cov(exchangeable)", "not supported", "exchangeable"),
        ("mixed y x || g: x, frobnicate", "is not supported", "frobnicate"),
    ],
)
def test_bad_formula_points_at_the_offending_term(formula, message, pointed):
    with pytest.raises(MlmError) as caught:
        parse(formula)
    text = str(caught.value)
    assert message in text
    formula_line, caret_line = text.splitlines()[-2:]
    start = formula_line.index(pointed)
    assert caret_line[start : start + len(pointed)] == "^" * len(pointed)


def test_unknown_columns_are_listed_beside_the_data_columns(data):
    with pytest.raises(MlmError) as caught:
        model_source(parse("y ~ dose + (1 | clinic)"), data)
    text = str(caught.value)
    assert "'dose', 'clinic', not in the data" in text
    assert "the data's columns are: y, x, tx, a, b, g, h, k, yb, yc" in text


def test_grouping_column_with_one_level_is_explained(data):
    with pytest.raises(MlmError, match="the grouping 'one' has one level"):
        model_source(parse("y ~ x + (1 | one)"), data.assign(one=1))


def test_slope_on_a_constant_is_explained(data):
    with pytest.raises(MlmError, match=r"'c' is constant .* slope on a constant .*\(0 \+ c \| g\)"):
        model_source(parse("y ~ x + (0 + c | g)"), data.assign(c=2.0))


def test_family_and_response_must_agree(data):
    with pytest.raises(MlmError, match="needs a 0/1 or two-level response"):
        model_source(parse("y ~ x", family="bernoulli"), data)
    with pytest.raises(MlmError, match="needs a family with a scale"):
        parse("yc ~ x", sigma="~ b", family="poisson")


# generated code --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMULAS)
def test_generated_model_matches_its_golden_file(name, data):
    source = generate(name, data)
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("MLM_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(source)
    # Both sides through the installed ruff, so a newer ruff's style is not a difference.
    expected = formatted(golden.read_text())
    assert source == expected, f"regenerate with MLM_UPDATE_GOLDEN=1 if intended: {name}"


def test_generated_files_pass_ruff_check_and_are_stable_under_ruff_format(tmp_path, data):
    for name in FORMULAS:
        (tmp_path / f"{name}.py").write_text(generate(name, data))
    ruff = [sys.executable, "-m", "ruff"]
    lint = subprocess.run(
        [
            *ruff,
            "check",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP",
            "--line-length",
            "100",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [*ruff, "format", "--isolated", "--line-length", "100", "--check", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout


def test_generated_model_reads_levels_from_the_data_it_is_given(data):
    model = build(generate("interaction_star", data), data)
    assert list(model.coords["a_effect"]) == ["a2", "a3"]  # a1 is the reference level
    fewer = data[data["g"] < 5].reset_index(drop=True)
    assert len(build(generate("interaction_star", data), fewer).coords["g"]) == 5


@pytest.mark.parametrize(
    ("name", "column", "message"),
    [
        ("interaction_star", "g", "column 'g' is empty at rows [3, 7]"),
        ("interaction_star", "a", "column 'a' is empty at rows [3, 7]"),  # a factor
        ("no_intercept", "k", "columns 'g' or 'k' are empty at rows [3, 7]"),  # nested g:k
    ],
)
def test_generated_build_refuses_an_empty_grouping_or_factor_cell(data, name, column, message):
    # pd.factorize codes a missing value as -1, which would silently index the last level.
    source = generate(name, data)
    holes = data.astype({column: object})
    holes.loc[[3, 7], column] = None
    with pytest.raises(ValueError) as caught:
        build(source, holes)
    assert message in str(caught.value)


# priors set with --prior -------------------------------------------------------------------


def test_prior_text_reads_positional_keyword_and_variance_forms():
    prior = parse_prior("sigma_g^2=Gamma(1, beta=1)")
    assert prior == Prior("sigma_g", "Gamma", (1,), (("beta", 1),), variance=True)
    assert parse_prior("sigma_g ** 2 = pm.Gamma(1, 1)") == Prior(
        "sigma_g", "Gamma", (1, 1), (), True
    )
    assert parse_prior("b_x=Normal(-1, 2.5)").args == (-1, 2.5)


def test_prior_on_sigma_with_a_categorical_sigma_formula_gives_one_sd_per_level():
    frame = example_frame()
    spec = parse("y ~ tx + (0 + tx | group)", sigma="~ condition", priors=ISSUE_PRIORS)
    source = model_source(spec, frame)
    assert 'sigma2 = pm.Uniform("sigma2", lower=0, upper=100, dims="condition")' in source
    assert 'sigma = pm.Deterministic("sigma", pm.math.sqrt(sigma2), dims="condition")' in source
    assert 'sigma2_group_tx = pm.Gamma("sigma2_group_tx", alpha=1, beta=1)' in source
    # tx is centred, so the prior on Intercept is on the intercept at tx's centre, as brms's.
    assert 'intercept_c = pm.Normal("Intercept_centred", mu=0, sigma=100)' in source
    assert "sigma=sigma[condition_]" in source
    assert "Priors set by --prior" in source and "\n    sigma^2=Uniform(0, 100)\n" in source
    assert "mlm's default: log(sigma) linear in condition" in " ".join(source.split())
    model = build(source, frame)
    assert list(model.coords["condition"]) == ["control", "treated"]  # every level, no reference
    assert model.named_vars_to_dims["sigma"] == ("condition",)
    free = {rv.name for rv in model.free_RVs}
    assert free == {"Intercept_centred", "b_tx", "sigma2_group_tx", "z_group_tx", "sigma2"}
    # Without a prior on sigma the residual SD keeps its log link and mlm's default priors.
    plain = model_source(parse("y ~ tx + (0 + tx | group)", sigma="~ condition"), frame)
    assert "log_sigma_condition" in plain and "--prior" not in plain


def test_stata_by_a_numeric_column_with_a_prior_on_sigma_gives_one_sd_per_value():
    # Stata's residuals(independent, by(tx)) is one variance per value of tx, a 0/1 number.
    frame = example_frame()
    stata = "mixed y tx || group: tx, nocons residuals(independent, by(tx))"
    source = model_source(parse(stata, priors=ISSUE_PRIORS), frame)
    lme4 = parse("y ~ tx + (0 + tx | group)", sigma="~ tx", priors=ISSUE_PRIORS)
    assert model_body(source) == model_body(model_source(lme4, frame))
    assert 'sigma2 = pm.Uniform("sigma2", lower=0, upper=100, dims="tx_level")' in source
    # tx is both a slope (its values) and the residual SD's index: two names, no clash.
    assert 'tx_ = pm.Data("tx", tx, dims="obs")' in source
    assert 'tx_idx_ = pm.Data("tx_idx", tx_idx, dims="obs")' in source
    assert "sigma=sigma[tx_idx_]" in source
    model = build(source, frame)
    assert list(model.coords["tx_level"]) == ["0", "1"]
    import pymc as pm

    with model:
        idata = pm.sample(draws=100, tune=150, chains=1, random_seed=1, progressbar=False)
    assert idata["posterior"]["sigma"].sizes["tx_level"] == 2
    # And an unknown name's message lists that choice among the parameters.
    with pytest.raises(MlmError, match=r"sigma \(one per level of tx, in place of log_sigma_\*\)"):
        model_source(parse(stata, priors=["sgma=HalfNormal(1)"]), frame)
    assert {rv.name for rv in model.free_RVs} == {
        "Intercept_centred",
        "b_tx",
        "sigma2_group_tx",
        "z_group_tx",
        "sigma2",
    }


def test_prior_on_sigma_without_a_sigma_formula_replaces_the_one_residual_sd(data):
    spec = parse("y ~ x + (1 | g)", priors=["sigma=HalfNormal(2)"])
    source = model_source(spec, data)
    assert 'sigma = pm.HalfNormal("sigma", sigma=2)' in source
    assert 'sigma = pm.Exponential("sigma"' not in source


ISSUE_FORMULA = ("y ~ tx + (0 + tx | group)", "~ condition")
# --prior text -> what the message must say; each is a different fault.
BAD_PRIORS = {
    "b_dose=Normal(0, 1)": "this model has no parameter 'b_dose'; its parameters are: Intercept, "
    "b_tx, sigma_group_tx, log_sigma_Intercept, log_sigma_condition, sigma (one per level",
    "b_txx=Normal(0, 1)": "no parameter 'b_txx' (did you mean b_tx?)",
    "b_tx=Nromal(0, 1)": "PyMC has no distribution 'Nromal'; did you mean Normal",
    "b_tx=Normal(0, scale=1)": "Normal takes mu, sigma, tau; got an unexpected keyword argument "
    "'scale'",
    "b_tx=Normal(0, 1, 2, 3)": "Normal takes mu, sigma, tau; too many positional arguments",
    "sigma=Gamma(1)": "PyMC cannot make Gamma(alpha=1): Incompatible parameterization",
    "b_tx^2=Gamma(1, 1)": "only a standard deviation (sigma, sigma_*) takes a prior on its "
    "variance; b_tx is not one",
    "sigma_group_tx=Normal(0, 1)": "sigma_group_tx is a standard deviation and must be positive, "
    "but Normal(mu=0, sigma=1) puts mass on negative values; use a positive distribution such "
    "as HalfNormal",
    "sigma^2=Cauchy(0, 1)": "sigma^2 is a variance and must be positive, but Cauchy(alpha=0, "
    "beta=1) puts mass on negative values; use a positive distribution such as HalfCauchy",
    "sigma=Uniform(-1, 1)": "Uniform(lower=-1, upper=1) puts mass on negative values",
    "sigma=Poisson(3)": "Poisson is discrete",
    "sigma=MvNormal(mu=[1, 1], cov=[[1, 0], [0, 1]])": "MvNormal is multivariate",
    "b_tx=Normal(0, y_sd)": "'y_sd' is not a Python literal",
    "b_tx Normal(0, 1)": "cannot read it; write it as NAME=Distribution(arguments)",
    "b_tx=Normal(0, 1": "'Normal(0, 1' is not a distribution call",
    "b_tx=Normal": "give the distribution's arguments",
}


@pytest.mark.parametrize("prior", BAD_PRIORS)
def test_bad_prior_is_refused_with_a_message_naming_the_fault(prior):
    formula, sigma = ISSUE_FORMULA
    with pytest.raises(MlmError) as caught:
        model_source(parse(formula, sigma=sigma, priors=[prior]), example_frame())
    assert str(caught.value).startswith(f"--prior {prior!r}")
    assert BAD_PRIORS[prior] in str(caught.value)


@pytest.mark.parametrize(
    ("sigma", "priors", "message"),
    [
        (
            "~ subject",
            ["sigma=HalfNormal(1)"],
            "one column with a few levels (as in '~ condition'); '~ subject' is not ('subject' "
            "is numeric, with 200 distinct values). Set priors on log_sigma_Intercept, "
            "log_sigma_subject instead",
        ),
        (
            "~ condition",
            ["sigma=HalfNormal(1)", "log_sigma_condition=Normal(0, 1)"],
            "in place of log_sigma_Intercept, log_sigma_condition: drop --prior "
            "'log_sigma_condition=Normal(0, 1)'",
        ),
        (None, ["sigma=HalfNormal(1)", "sigma^2=Gamma(1, 1)"], "--prior gives sigma twice"),
    ],
)
def test_prior_on_sigma_that_does_not_fit_the_sigma_formula_is_explained(sigma, priors, message):
    with pytest.raises(MlmError) as caught:
        model_source(parse(ISSUE_FORMULA[0], sigma=sigma, priors=priors), example_frame())
    assert message in str(caught.value)


def test_variance_prior_on_correlated_sds_is_refused(data):
    with pytest.raises(MlmError, match=r"SDs of an LKJ covariance, whose prior .* SD scale"):
        model_source(parse("y ~ x + (1 + x | g)", priors=["sigma_g^2=Gamma(1, 1)"]), data)


def test_every_formula_is_sampled_by_some_test():
    assert set(FORMULAS) == SAMPLED_ELSEWHERE | set(SAMPLED_HERE)


SAMPLED_HERE = [
    "factor_in_group",
    "lme4_calls",
    "stata_forms",
    "intercept_slope",
    "interaction_colon",
    "minus_one",
    "sigma_by_level",
    "priors_correlated",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SAMPLED_HERE)
def test_generated_model_samples(name, data):
    import pymc as pm

    from mlm import compiled

    # As `mlm run fit` samples: through the compiled-model cache, which must take every
    # family and term type without falling back to nutpie's own compile.
    with build(generate(name, data), data), compiled.persistent() as counts:
        idata = pm.sample(draws=100, tune=150, chains=1, random_seed=1, progressbar=False)
    assert counts.fallback == 0 and counts.loaded + counts.compiled == 1
    posterior = idata["posterior"]
    assert all(np.isfinite(posterior[v].to_numpy()).all() for v in posterior.data_vars)


# agreement with independent implementations --------------------------------------------------


DRAWS = 600  # per chain, 2 chains: MC error a few hundredths of a posterior SD


def _fit(model, draws=DRAWS, seed=11):
    import pymc as pm

    with model:
        return pm.sample(draws=draws, tune=DRAWS, chains=2, random_seed=seed, progressbar=False)


def _stats(idata, name, coords=None):
    """Posterior mean, SD and MC standard error of each cell of a variable, flattened."""
    import arviz as az

    table = az.summary(idata, var_names=[name], coords=coords, round_to="none", kind="all")
    return table["mean"].to_numpy(), table["sd"].to_numpy(), table["mcse_mean"].to_numpy()


def assert_agree(ours, theirs, pairs, slack=0.1):
    """Posterior means agree within 4 combined MC SEs plus `slack` posterior SDs.

    4 SEs keep a correct model's false alarms near 0.1 % over up to 15 compared cells
    (docs/testing.md); 3 would fail one in 25 runs at 15 cells.

    The slack allows for the two programs' different weakly informative default priors
    (the data are large enough for them to move a mean by a fraction of an SD only).
    """
    for mine, other in pairs.items():
        m1, s1, e1 = _stats(ours, mine)
        m2, s2, e2 = _stats(theirs, other)
        bound = 4 * np.hypot(e1, e2) + slack * np.maximum(s1, s2)
        assert m1.shape == m2.shape, (mine, other)
        assert (np.abs(m1 - m2) <= bound).all(), f"{mine} {m1} vs {other} {m2} (bound {bound})"


GLM_PAIRS = {"Intercept": "Intercept", "b_x": "x", "sigma_g": "1|g_sigma"}
# name -> (the formula as Bambi writes it, our variable -> Bambi's). Bambi reads no `||`.
BAMBI_CASES = {
    "interaction_star": (
        "y ~ x * a + a * b + (1 | g)",
        {
            "Intercept": "Intercept",
            "b_x": "x",
            "b_a": "a",
            "b_b": "b",
            "b_x_by_a": "x:a",
            "b_a_by_b": "a:b",
            "sigma_g": "1|g_sigma",
            "sigma": "sigma",
            "u_g": "1|g",
        },
    ),
    "no_intercept": (
        "y ~ 0 + a + x + (1 | g) + (0 + x | g) + (1 | g:k) + (1 | h)",
        {
            "b_a": "a",
            "b_x": "x",
            "sigma_g": "1|g_sigma",
            "sigma_g_x": "x|g_sigma",
            "sigma_g_by_k": "1|g:k_sigma",
            "sigma_h": "1|h_sigma",
            "sigma": "sigma",
        },
    ),
    "sigma_model": (
        "y ~ tx + (0 + tx | g)",
        {
            "Intercept": "Intercept",
            "b_tx": "tx",
            "sigma_g_tx": "tx|g_sigma",
            "log_sigma_Intercept": "sigma_Intercept",
            "log_sigma_b": "sigma_b",
        },
    ),
    "student_t": ("y ~ x + (1 | g)", GLM_PAIRS),
    "bernoulli": ("yb ~ x + (1 | g)", GLM_PAIRS),
    "poisson": ("yc ~ x + (1 | g)", GLM_PAIRS),
}
BAMBI_FAMILY = {"student_t": "t", "bernoulli": "bernoulli", "poisson": "poisson"}
# Formulas sampled by the agreement tests below; the rest are sampled on their own.
SAMPLED_ELSEWHERE = {*BAMBI_CASES, "correlated"}


@pytest.mark.slow
@pytest.mark.parametrize("name", BAMBI_CASES)
def test_generated_posterior_agrees_with_bambi(name, data):
    bmb = pytest.importorskip("bambi")
    _, sigma, family = FORMULAS[name]
    formula, pairs = BAMBI_CASES[name]
    ours = _fit(build(generate(name, data), data))
    bambi_formula = bmb.Formula(formula, f"sigma {sigma}") if sigma else formula
    reference = bmb.Model(bambi_formula, data, family=BAMBI_FAMILY.get(name, "gaussian"))
    theirs = reference.fit(
        draws=DRAWS,
        tune=DRAWS,
        chains=2,
        random_seed=12,
        inference_method="nutpie",
        progressbar=False,
    )
    slack = 0.2 if family in ("bernoulli", "poisson") else 0.1
    assert_agree(ours, theirs, pairs, slack)


@pytest.mark.slow
def test_correlated_intercept_and_slope_agree_with_statsmodels_mixedlm(data):
    """Bambi's (1 + x | g) is uncorrelated, so the LKJ model is checked against MixedLM's ML fit."""
    import statsmodels.formula.api as smf

    ours = _fit(build(generate("correlated", data), data), draws=1000)
    fit = smf.mixedlm("y ~ x", data, groups=data["g"], re_formula="~x").fit(reml=True)
    post = ours["posterior"]
    for name, estimate in (("Intercept", fit.fe_params["Intercept"]), ("b_x", fit.fe_params["x"])):
        draws = post[name].to_numpy().ravel()
        assert abs(draws.mean() - estimate) < 0.15 * draws.std() + 0.01, name
    cov = fit.cov_re.to_numpy()
    sd = post["sigma_g"].to_numpy().reshape(-1, 2)
    # REML variance components against posterior medians: within a third of a posterior SD.
    for j, ml in enumerate(np.sqrt(np.diag(cov))):
        assert abs(np.median(sd[:, j]) - ml) < 0.35 * sd[:, j].std(), (j, ml)
    rho = post["corr_g"].to_numpy()[..., 0, 1].ravel()
    assert abs(np.median(rho) - cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])) < 0.5 * rho.std()
    assert abs(post["sigma"].to_numpy().mean() - np.sqrt(fit.scale)) < 0.02


# the example ----------------------------------------------------------------------------------


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_issue_formula_with_the_questioners_priors_gives_the_example_posterior():
    """The issue's check: the formula and --prior options reproduce example_project/model.py.

    Same likelihood, same priors (on the variances, one residual variance per arm), so every
    posterior mean agrees within 4 combined MC SEs, with no slack.
    """
    frame = example_frame()
    spec = parse(ISSUE_FORMULA[0], sigma=ISSUE_FORMULA[1], priors=ISSUE_PRIORS)
    ours_model = build(model_source(spec, frame), frame)
    example = _module(REPO / "example_project" / "model.py")
    data = _module(REPO / "example_project" / "data.py").load()
    theirs_model = example.build(data)
    # Controls each have a group of their own (11..110). The generated (0 + tx | group) gives
    # those groups effects too, but tx = 0 multiplies them away, so they are draws from the
    # prior; example_project keeps the treated arm's groups only. Compare the shared ones.
    therapy = list(theirs_model.coords["group"])
    assert therapy == [str(g) for g in range(1, 11)]
    assert list(ours_model.coords["group"]) == [str(g) for g in sorted(frame["group"].unique())]
    assert list(ours_model.coords["condition"]) == list(theirs_model.coords["condition"])

    ours = _fit(ours_model, draws=1500)
    theirs = _fit(theirs_model, draws=1500, seed=5)
    pairs = {
        "Intercept": ("b0", None),
        "b_tx": ("b1", None),
        "sigma_group_tx": ("sigma_u", None),
        "sigma": ("sigma_e", None),  # control, treated
        "u_group_tx": ("u", {"group": therapy}),
    }
    rows = []
    for mine, (other, coords) in pairs.items():
        m1, _, e1 = _stats(ours, mine, coords)
        m2, _, e2 = _stats(theirs, other, coords)
        assert m1.shape == m2.shape, (mine, other)
        for k in range(len(m1)):
            label = mine if len(m1) == 1 else f"{mine}[{k}]"
            rows.append((label, m1[k], m2[k], abs(m1[k] - m2[k]), 4 * np.hypot(e1[k], e2[k])))
    print("\nparameter           ours  example   |diff|  4 MC SE")
    for label, a, b, diff, bound in rows:
        print(f"{label:16s} {a:8.4f} {b:8.4f} {diff:8.4f} {bound:8.4f}")
    assert all(diff <= bound for *_, diff, bound in rows), rows


# the command line ---------------------------------------------------------------------------


def _issue_csv(folder: Path) -> Path:
    path = folder / "trial.csv"
    example_frame().to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_new_with_formula_and_data_runs_end_to_end_and_its_tests_pass(tmp_path):
    csv = _issue_csv(tmp_path)
    done = run_mlm(
        "new",
        "trial",
        "--formula",
        "y ~ tx + (0 + tx | group)",
        "--sigma",
        "~ condition",
        "--data",
        str(csv),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    root = tmp_path / "trial"
    assert (root / "data" / "trial.csv").read_bytes() == csv.read_bytes()
    assert not (root / "data" / "scores.csv").exists()
    assert "y ~ tx + (0 + tx | group)" in (root / "model.py").read_text()
    (root / "fit.py").write_text(FAST_FIT)
    done = run_mlm("run", cwd=root)
    assert done.returncode == 0, done.stderr
    figures = {p.name for p in (root / "figures").glob("*.png")}
    assert figures == {"coefficients.png", "group_effects.png", "posterior_predictive.png"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout


def test_new_with_a_bad_formula_leaves_nothing_behind(tmp_path):
    done = run_mlm("new", "trial", "--formula", "y ~ dose + (1 | clinic)", cwd=tmp_path)
    assert done.returncode == 1
    assert "'y', 'dose', 'clinic', not in the data" in done.stderr
    assert "school, hours, score" in done.stderr
    assert not (tmp_path / "trial").exists()


def test_new_with_formula_on_the_template_data(tmp_path):
    formula, prior = "score ~ hours + (1 + hours | school)", "sigma=HalfNormal(10)"
    done = run_mlm("new", "trial", "--formula", formula, "--prior", prior, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "trial" / "model.py").read_text()
    assert "pm.LKJCholeskyCov" in source and formula in source
    # The project's README repeats the options, so the model can be written again.
    readme = (tmp_path / "trial" / "README.md").read_text()
    assert f"--formula '{formula}'" in readme and f"--prior '{prior}'" in readme


def test_generate_model_writes_model_py_or_a_variant_and_never_overwrites_silently(tmp_path):
    root = tmp_path / "trial"
    assert run_mlm("new", "trial", cwd=tmp_path).returncode == 0
    original = (root / "model.py").read_text()
    formula = "score ~ hours + (1 | school)"
    refused = run_mlm("generate", "model", "--formula", formula, cwd=root)
    assert refused.returncode == 1 and "model.py exists and differs" in refused.stderr
    assert (root / "model.py").read_text() == original
    variant = run_mlm(
        "generate",
        "model",
        "slopes",
        "--formula",
        "score ~ hours + (1 + hours || school)",
        cwd=root,
    )
    assert variant.returncode == 0, variant.stderr
    assert "(1 + hours || school)" in (root / "models" / "slopes.py").read_text()
    forced = run_mlm("generate", "model", "--formula", formula, "--force", cwd=root)
    assert forced.returncode == 0, forced.stderr
    assert "score ~ hours + (1 | school)" in (root / "model.py").read_text()
    shutil.rmtree(root / "models")
    unknown = run_mlm("generate", "model", "--formula", "score ~ hour", "--force", cwd=root)
    assert unknown.returncode == 1 and "'hour', not in the data" in unknown.stderr


TEMPLATE_FORMULA = "score ~ hours + (1 | school)"
# One bad --prior per kind of fault, on the template's data, and what the message says.
CLI_BAD_PRIORS = {
    "unknown name": (
        "b_hour=Normal(0, 1)",
        "no parameter 'b_hour' (did you mean b_hours?); its parameters are: Intercept, b_hours, "
        "sigma_school, sigma",
    ),
    "unknown distribution": ("b_hours=Gaussian(0, 1)", "PyMC has no distribution 'Gaussian'"),
    "bad arguments": ("b_hours=Normal(0, sd=1)", "unexpected keyword argument 'sd'"),
    "variance of a non-SD": ("Intercept^2=Gamma(1, 1)", "Intercept is not one"),
    "unbounded SD prior": ("sigma_school=Normal(0, 1)", "use a positive distribution such as"),
    "malformed": ("sigma_school:HalfNormal(1)", "write it as NAME=Distribution(arguments)"),
}


@pytest.mark.parametrize("fault", CLI_BAD_PRIORS)
def test_new_with_a_bad_prior_exits_1_naming_the_fault_and_leaves_nothing(tmp_path, fault):
    prior, message = CLI_BAD_PRIORS[fault]
    done = run_mlm("new", "trial", "--formula", TEMPLATE_FORMULA, "--prior", prior, cwd=tmp_path)
    assert done.returncode == 1
    assert f"--prior {prior!r}" in done.stderr and message in " ".join(done.stderr.split())
    assert not (tmp_path / "trial").exists()


def test_generate_model_with_priors_writes_them_and_says_so(tmp_path):
    root = tmp_path / "trial"
    assert run_mlm("new", "trial", cwd=tmp_path).returncode == 0
    priors = ["--prior", "sigma_school^2=Gamma(2, 1)", "--prior", "b_hours=Normal(0, 10)"]
    done = run_mlm("generate", "model", "wide", "--formula", TEMPLATE_FORMULA, *priors, cwd=root)
    assert done.returncode == 0, done.stderr
    source = (root / "models" / "wide.py").read_text()
    assert 'sigma2_school = pm.Gamma("sigma2_school", alpha=2, beta=1)' in source
    assert 'b_hours = pm.Normal("b_hours", mu=0, sigma=10)' in source
    assert "Priors set by --prior" in source
    alone = run_mlm("generate", "model", "other", "--prior", "b_hours=Normal(0, 1)", cwd=root)
    assert alone.returncode == 1 and "--prior needs --formula" in alone.stderr
    fresh = run_mlm("new", "other", "--prior", "b_hours=Normal(0, 1)", cwd=tmp_path)
    assert fresh.returncode == 1 and "--data and --drop-missing need --formula" in fresh.stderr


def test_generated_model_refuses_an_empty_grouping_cell_at_mlm_run(tmp_path):
    csv = tmp_path / "sim.csv"
    simulate().to_csv(csv, index=False)
    done = run_mlm("new", "p", "--formula", "y ~ x + a + (1 | g)", "--data", str(csv), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "p"
    frame = pd.read_csv(root / "data" / "sim.csv")
    frame.loc[3, "g"] = None
    frame.to_csv(root / "data" / "sim.csv", index=False)
    done = run_mlm("run", "model", cwd=root)
    assert done.returncode == 1
    assert "column 'g' is empty at rows [3]; drop or fill them in data.py" in done.stderr
    # said once: mlm's own note on NaN rows would repeat what model.py's error says
    assert "the data have missing (NaN) values" not in done.stderr
