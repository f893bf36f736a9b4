"""The forms lme4 and Stata users type (issue 12, item 4), read as lme4 and Stata read them.

Parsing and the generated code are pinned fast; the claims about the fitted model (a text
column and its 0/1 code give the same posterior; Stata's c.x##c.x samples through
`mlm run`) are checked by sampling, with small draws and fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_formula import build, simulate

from mlm.codegen import model_source
from mlm.errors import MlmError
from mlm.formula import INTERCEPT, Derived, GroupTerm, Reference, Term, lme4_formula, parse

from conftest import FAST_FIT, model_body, run_mlm


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    frame = simulate()
    frame["week"] = frame["k"] + 1  # 1, 2, 3: a numeric column Stata's i. makes a factor
    return frame


def terms(*names) -> tuple[Term, ...]:
    return tuple(INTERCEPT if n == "1" else Term(tuple(n.split(":"))) for n in names)


# Stata's factor-variable notation --------------------------------------------------------


@pytest.mark.parametrize(
    ("stata", "lme4"),
    [
        ("mixed y c.week##c.week || g:", "y ~ week + I(week^2) + (1 | g)"),
        ("mixed y c.week#c.week || g:", "y ~ I(week^2) + (1 | g)"),
        ("mixed y c.x##c.x##c.x || g:", "y ~ x + I(x^2) + I(x^3) + (1 | g)"),
        ("mixed y i.a##c.x || g:", "y ~ a + x + a:x + (1 | g)"),
        ("mixed y c.x##i.a || g:", "y ~ x + a + x:a + (1 | g)"),
        ("mixed y i.a#c.x || g:", "y ~ a:x + (1 | g)"),
        ("mixed y i.a##i.b || g:", "y ~ a + b + a:b + (1 | g)"),
        ("mixed y i.a#i.b || g:", "y ~ a:b + (1 | g)"),
        ("mixed y a#b || g:", "y ~ a:b + (1 | g)"),  # unprefixed in # : a factor
        ("mixed y c.x#c.tx || g:", "y ~ x:tx + (1 | g)"),
        ("mixed y i.week || g:", "y ~ factor(week) + (1 | g)"),
        ("mixed y c.x##c.x#i.a || g:", "y ~ x + x:a + I(x^2):a + (1 | g)"),
    ],
)
def test_stata_factor_variables_read_as_the_lme4_formula(stata, lme4, data):
    spec = parse(stata)
    numeric = {c for c in data.columns if pd.api.types.is_numeric_dtype(data[c])}
    assert lme4_formula(spec, numeric) == lme4
    build(model_source(spec, data), data)  # and each builds


def test_stata_c_week_squared_is_one_coefficient_of_week_squared(data):
    spec = parse("mixed y c.week##c.week || g:")
    assert spec.terms == (INTERCEPT, Term(("week",)), Term(("I(week^2)",)))
    assert spec.derived == (Derived("I(week^2)", "week ** 2", ("week",)),)
    model = build(model_source(spec, data), data)
    assert {"b_week", "b_week_pow_2"} <= {v.name for v in model.free_RVs}
    np.testing.assert_allclose(model["week_pow_2"].get_value(), data["week"] ** 2)


@pytest.mark.parametrize(
    ("token", "reference"),
    [
        ("ib2.week", Reference("week", level=2)),
        ("ib(last).week", Reference("week", position="last")),
        ("ib(first).week", Reference("week", position="first")),
        ("ib(freq).week", Reference("week", position="freq")),
        ("ib(#3).week", Reference("week", position="#3")),
    ],
)
def test_stata_base_levels(token, reference, data):
    spec = parse(f"mixed y {token} || g:")
    assert spec.references == (reference,) and spec.categorical == {"week"}
    model = build(model_source(spec, data), data)
    base = {"ib2": "2", "ib(last)": "3", "ib(first)": "1", "ib(#3)": "3"}
    counts = data["week"].value_counts()
    base["ib(freq)"] = str(counts.idxmax())
    chosen = base[token.split(".")[0]]
    assert chosen not in list(model.coords["week_effect"])
    assert len(model.coords["week_effect"]) == 2


@pytest.mark.parametrize(
    "written",
    [
        "mixed y x || g: x, cov(un)",
        "mixed y x || g: x, cov(unstr)",
        "mixed y x || g: x, covariance(unstructured)",
        "mixed y x || g: x, covar(uns)",
        "mixed y x || g: x, cov(UN)",
    ],
)
def test_stata_covariance_abbreviations(written):
    assert parse(written) == parse("y ~ x + (1 + x | g)")


@pytest.mark.parametrize(
    "written",
    [
        "mixed y tx || g: tx, nocons res(ind, by(b))",
        "mixed y tx || g: tx, nocon resid(independent, by(b))",
        "mixed y tx || g: tx, noconstant residuals(ind, by(b))",
        "mixed y tx, res(independent, by(b)) || g: tx, nocons",
    ],
)
def test_stata_residuals_and_noconstant_abbreviations(written):
    assert parse(written) == parse("y ~ tx + (0 + tx | g)", sigma="~ b")


@pytest.mark.parametrize(
    "written",
    [
        "mixed y x || g: x, cov(u)",
        "mixed y x || g: x, co(un)",
        "mixed y x || g:, re(ind)",
        "mixed y x, reml || g:, mle",
    ],
)
def test_stata_refuses_what_stata_does_not_abbreviate_so(written):
    with pytest.raises(MlmError):
        parse(written)


@pytest.mark.parametrize("option", ["reml", "mle"])
def test_reml_and_mle_are_accepted_with_a_note_through_the_cli(tmp_path, data, option):
    csv = tmp_path / "d.csv"
    data.to_csv(csv, index=False)
    done = run_mlm(
        "new", "p", "--formula", f"mixed y x || g:, {option}", "--data", str(csv), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"Stata's {option} option" in notes[0]
    assert "fit is Bayesian" in notes[0]
    assert "fit is Bayesian" in " ".join((tmp_path / "p" / "model.py").read_text().split())


# lme4's calls ------------------------------------------------------------------------------


def test_lme4_calls_become_computed_or_categorical_columns(data):
    spec = parse("y ~ I(x^2) + I(x - 10) + factor(week) + C(a) + log(tx + 1) + scale(x)")
    assert spec.terms == terms("1", "I(x^2)", "I(x - 10)", "week", "a", "log(tx + 1)", "scale(x)")
    assert spec.categorical == {"week", "a"}
    model = build(model_source(spec, data), data)
    x = data["x"].to_numpy()
    np.testing.assert_allclose(model["x_pow_2"].get_value(), x**2)
    np.testing.assert_allclose(model["x_minus_10"].get_value(), x - 10)
    np.testing.assert_allclose(model["log_tx_plus_1"].get_value(), np.log(data["tx"] + 1))
    np.testing.assert_allclose(model["scale_x"].get_value(), (x - x.mean()) / x.std(ddof=1))
    # the mean is written as a number, as a person writes it: x - 1.5, x + 1.5, never x - -1.5
    for shift in (10.0, -10.0):
        shifted = data.assign(x=data["x"] + shift)
        (line,) = [
            ln
            for ln in model_source(spec, shifted).splitlines()
            if ln.strip().startswith("scale_x = ")
        ]
        mean = f"{abs(float(shifted['x'].mean())):.10g}"
        assert f"(x {'-' if shift > 0 else '+'} {mean}) / " in line and "- -" not in line, line
        model = build(model_source(spec, shifted), shifted)
        expected = (x - x.mean()) / x.std(ddof=1)  # to the 10 digits the numbers are written to
        np.testing.assert_allclose(model["scale_x"].get_value(), expected, atol=1e-8)
    assert list(model.coords["week_effect"]) == ["2", "3"]  # factor(week): 1 is the reference
    assert "factor(week)" in model_source(spec, data)  # the docstring's lme4 formula


@pytest.mark.parametrize(
    "written",
    [
        "y ~ I(x**2)",
        "y ~ I(x ^ 2)",
        "y ~ I( x^2 )",
        "mixed y c.x#c.x",
    ],
)
def test_a_square_is_one_column_however_written(written):
    assert parse(written).derived == (Derived("I(x^2)", "x ** 2", ("x",)),)


@pytest.mark.parametrize(
    "written",
    [
        'y ~ C(a, Treatment("a2"))',
        "y ~ C(a, Treatment('a2'))",
        'y ~ C(a, Treatment(reference="a2"))',
        'y ~ relevel(a, "a2")',
        'y ~ relevel(factor(a), ref = "a2")',
        "y ~ T(a, ref='a2')",
        "mixed y ib(#2).a",
    ],
)
def test_reference_level_forms_choose_the_same_reference(written, data):
    spec = parse(written)
    source = model_source(spec, data)
    model = build(source, data)
    assert list(model.coords["a_effect"]) == ["a1", "a3"]
    assert "treatment coding with the reference level 'a2', chosen by" in " ".join(source.split())
    assert 'relevel(factor(a), ref = "a2")' in source


def test_a_reference_level_not_in_the_data_is_explained(data):
    with pytest.raises(MlmError, match="'a9' is not a level of 'a'; its levels are 'a1', 'a2'"):
        model_source(parse('y ~ C(a, Treatment("a9"))'), data)


def test_a_transform_that_is_not_finite_is_explained(data):
    with pytest.raises(MlmError, match=r"log\(tx\) is not finite at rows \["):
        model_source(parse("y ~ log(tx)"), data)


# Refused with what the user wrote, never an internal name ------------------------------------

REFUSED = {
    "y ~ x + (1 | g):x": "(1 | g) is a group term: add it to the formula on its own",
    "y ~ x * (1 | g)": "(1 | g) is a group term",
    "y ~ logit(x) + (1 | g)": "'logit(x)' is a function mlm does not read",
    "y ~ poly(x, 2) + (1 | g)": "poly() is not supported",
    "y ~ x + (1 | log(g))": "group by a column, not by 'log(g)'",
    "y ~ offset(x) + (1 | g)": "offset() is not supported",
    "y ~ C(a, Sum) + (1 | g)": "treatment contrasts only",
    "y ~ I(x, 2) + (1 | g)": "I() takes one argument",
    "y ~ I(x + 'a') + (1 | g)": "use arithmetic on columns",
    "y ~ I(foo(x)) + (1 | g)": "foo() is not a function mlm reads inside a formula",
    "y ~ x + (1 + log(x) + | g)": "cannot parse",
    "y ~ log(x + (1 | g))": "cannot parse",
    "y ~ factor(x, 2)": "cannot read",
}


@pytest.mark.parametrize("formula", REFUSED)
def test_a_refused_term_is_named_as_written(formula):
    with pytest.raises(MlmError) as caught:
        parse(formula)
    message = str(caught.value)
    assert REFUSED[formula] in message
    assert "mlm_" not in message, message


def test_a_refused_term_through_the_cli_names_it_as_written(tmp_path):
    done = run_mlm("new", "p", "--formula", "score ~ hours + (1 | school):hours", cwd=tmp_path)
    assert done.returncode == 1
    assert "(1 | school) is a group term" in done.stderr and "mlm_" not in done.stderr


# A factor inside a group term ------------------------------------------------------------------


def test_factor_in_a_group_term_parses_as_lme4_does():
    (group,) = parse("y ~ cond + (1 + cond | s)").groups
    assert group == GroupTerm(("s",), terms("1", "cond"), True)
    (levels,) = parse("y ~ cond + (0 + cond | s)").groups
    assert levels.correlated  # lme4's |: the levels' effects correlated
    split = parse("y ~ cond + (1 + cond || s)").groups
    assert [g.terms for g in split] == [terms("1"), terms("cond")]
    assert all(g.block == terms("1", "cond") and not g.correlated for g in split)


@pytest.mark.parametrize(
    ("formula", "effects", "correlated"),
    [
        ("y ~ a + (1 + a | g)", ["Intercept", "a[a2]", "a[a3]"], True),
        ("y ~ a + (0 + a | g)", ["a[a1]", "a[a2]", "a[a3]"], True),
        ("y ~ x + (1 + x:a | g)", ["Intercept", "x:a[a1]", "x:a[a2]", "x:a[a3]"], True),
        ("y ~ x + (1 + x + x:a | g)", ["Intercept", "x", "x:a[a2]", "x:a[a3]"], True),
        ("mixed y i.a || g: i.a, nocons cov(un)", ["a[a1]", "a[a2]", "a[a3]"], True),
        ("y ~ a + (0 + a || g)", ["a[a1]", "a[a2]", "a[a3]"], False),
        ("mixed y i.a || g: i.a, nocons", ["a[a1]", "a[a2]", "a[a3]"], False),
    ],
)
def test_factor_in_a_group_term_is_coded_as_lme4_codes_it(data, formula, effects, correlated):
    spec = parse(formula)
    source = model_source(spec, data)
    model = build(source, data)
    (effect,) = [c for c in model.coords if c.startswith("g") and c.endswith("_effect")]
    assert list(model.coords[effect]) == effects
    assert ("LKJCholeskyCov" in source) == correlated
    rows = model[f"X_{effect.removesuffix('_effect')}"].get_value()
    assert rows.shape == (len(data), len(effects))


def test_factor_beside_an_intercept_in_a_double_bar_is_independent_treatment_contrasts(data):
    # lme4's own || leaves a factor's levels correlated and overparameterised; mlm codes
    # (1 + a || g) as afex's expand_re does: the intercept and each contrast independent.
    model = build(model_source(parse("y ~ a + (1 + a || g)"), data), data)
    assert list(model.coords["g_a_effect"]) == ["a[a2]", "a[a3]"]
    assert model.named_vars_to_dims["sigma_g_a"] == ("g_a_effect",)
    assert "chol_g" not in model.named_vars


def test_stata_and_lme4_forms_of_a_factor_group_term_write_the_same_model(data):
    stata = model_source(parse("mixed y i.a || g: i.a, nocons cov(un)"), data)
    lme4 = model_source(parse("y ~ factor(a) + (0 + factor(a) | g)"), data)
    assert model_body(stata) == model_body(lme4)


def test_two_factors_interacted_in_a_group_term_are_refused_with_advice(data):
    with pytest.raises(MlmError, match="a group term takes one"):
        model_source(parse("y ~ x + (1 + a:b | g)"), data)


# What lme4 refuses --------------------------------------------------------------------------


def test_a_grouping_with_as_many_levels_as_rows_is_refused(data):
    rows = data.assign(row=np.arange(len(data)))
    with pytest.raises(MlmError, match=r"has as many levels as the data have rows .* lme4 refuses"):
        model_source(parse("y ~ x + (1 | row)"), rows)
    # An observation-level effect in a count model is what glmer allows (overdispersion).
    model_source(parse("yc ~ x + (1 | row)", family="poisson"), rows)


def test_as_many_levels_as_rows_through_the_cli(tmp_path, data):
    csv = tmp_path / "d.csv"
    data.assign(row=np.arange(len(data))).to_csv(csv, index=False)
    done = run_mlm("new", "p", "--formula", "y ~ x + (1 | row)", "--data", str(csv), cwd=tmp_path)
    assert done.returncode == 1 and "as many levels as the data have rows (480)" in done.stderr
    assert not (tmp_path / "p").exists()


# Sampling ----------------------------------------------------------------------------------


def _fit(model, seed):
    import pymc as pm

    with model:
        return pm.sample(draws=500, tune=500, chains=2, random_seed=seed, progressbar=False)


@pytest.mark.slow
def test_text_column_and_its_dummy_in_a_group_term_give_the_same_posterior():
    """(1 + cond | subject) with cond text, and with its 0/1 code: one model, one posterior.

    The priors that scale differently for a factor and a number are set equal by --prior;
    every posterior mean then agrees within 4 combined Monte Carlo standard errors.
    """
    import arviz as az

    rng = np.random.default_rng(3)
    subjects, per = 30, 16
    subject = np.repeat(np.arange(subjects), per)
    cond = rng.choice(["control", "drug"], subject.size)
    u0, u1 = rng.normal(0, 1.0, subjects), rng.normal(0, 0.6, subjects)
    drug = (cond == "drug").astype(int)
    y = 2 + 0.8 * drug + u0[subject] + u1[subject] * drug + rng.normal(0, 0.7, subject.size)
    frame = pd.DataFrame({"y": y, "cond": cond, "drug": drug, "subject": subject})
    common = ["Intercept=Normal(0, 10)", "sigma_subject=HalfNormal(2)", "sigma=HalfNormal(2)"]
    text = parse("y ~ cond + (1 + cond | subject)", priors=[*common, "b_cond=Normal(0, 5)"])
    dummy = parse("y ~ drug + (1 + drug | subject)", priors=[*common, "b_drug=Normal(0, 5)"])
    ours = _fit(build(model_source(text, frame), frame), seed=1)
    theirs = _fit(build(model_source(dummy, frame), frame), seed=2)
    assert list(ours["posterior"]["sigma_subject"].coords["subject_effect"].values) == [
        "Intercept",
        "cond[drug]",
    ]
    pairs = {
        "Intercept": "Intercept",
        "b_cond": "b_drug",
        "sigma_subject": "sigma_subject",
        "sigma": "sigma",
    }
    for mine, other in pairs.items():
        a = az.summary(ours, var_names=[mine], round_to="none")
        b = az.summary(theirs, var_names=[other], round_to="none")
        bound = 4 * np.hypot(a["mcse_mean"].to_numpy(), b["mcse_mean"].to_numpy())
        diff = np.abs(a["mean"].to_numpy() - b["mean"].to_numpy())
        assert (diff <= bound).all(), (mine, a["mean"].to_numpy(), b["mean"].to_numpy(), bound)
    rho = ours["posterior"]["corr_subject"].to_numpy()[..., 0, 1].ravel()
    rho2 = theirs["posterior"]["corr_subject"].to_numpy()[..., 0, 1].ravel()
    assert abs(rho.mean() - rho2.mean()) < 4 * np.hypot(rho.std(), rho2.std()) / np.sqrt(200)


@pytest.mark.slow
def test_stata_c_week_squared_runs_through_mlm_run(tmp_path, data):
    """The issue's crash: `Variable name b_week already exists` at `mlm run`."""
    csv = tmp_path / "weeks.csv"
    data.to_csv(csv, index=False)
    formula = "mixed y c.week##c.week i.a ib(last).b || g: week, cov(un) reml"
    done = run_mlm("new", "weeks", "--formula", formula, "--data", str(csv), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "weeks"
    (root / "fit.py").write_text(FAST_FIT)
    done = run_mlm("run", cwd=root)
    assert done.returncode == 0, done.stderr
    summary = run_mlm("summary", cwd=root)
    assert summary.returncode == 0 and "b_week_pow_2" in summary.stdout
