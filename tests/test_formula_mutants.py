"""Tests written for the mutation review of the formula parser and the code generator.

Each pins a behaviour a surviving mutant of `bash scripts/mutation.sh formula` (or a
codegen target) changed without any other fast test noticing: parsed terms and computed
columns, lme4 text written back, the messages (and the caret under the offending text) of
refused formulas. docs/testing.md lists the mutants and the reasons for those left alive.
"""

from __future__ import annotations

import pytest

from mlm.errors import MlmError
from mlm.formula import Derived, Reference, Term, lme4_formula, parse, parse_prior


def refused(formula: str, **options) -> str:
    with pytest.raises(MlmError) as caught:
        parse(formula, **options)
    return str(caught.value)


def caret(message: str) -> tuple[int, int]:
    """(column, width) of the caret line under the formula in `message` (its 'in:' line
    is `  in: FORMULA`, the caret line indented to match)."""
    lines = message.splitlines()
    shown = next(i for i, line in enumerate(lines) if line.startswith("  in: "))
    assert shown + 1 < len(lines), f"no caret line in {message!r}"
    marks = lines[shown + 1][len("  in: ") :]
    stripped = marks.lstrip(" ")
    assert set(stripped) == {"^"}, marks
    return len(marks) - len(stripped), len(stripped)


# the caret under the offending text --------------------------------------------------------


def test_a_fragment_at_the_start_of_the_formula_gets_its_caret_at_column_0():
    message = refused("log(y) ~ x")
    assert "the response 'log(y)' must be one column name" in message
    assert caret(message) == (0, len("log(y)"))


def test_a_one_character_fragment_gets_one_caret():
    message = refused("y ~ x | g")
    assert "a group term must be in parentheses" in message
    assert caret(message) == ("y ~ x | g".index("|"), 1)


@pytest.mark.parametrize(
    "formula", ["y ~ (1 | g) + a | h", "y ~ (1 | g) + (x || h) + a | k", "y ~ a | h + (1 | g)"]
)
def test_the_caret_is_under_the_bar_outside_parentheses(formula):
    # not under the first '|' of the formula, which may be a proper group term's
    message = refused(formula)
    assert "a group term must be in parentheses" in message
    outside = [
        i
        for i, c in enumerate(formula)
        if c == "|" and formula[:i].count("(") == formula[:i].count(")")
    ]
    assert caret(message) == (outside[0], 1)


def test_the_caret_is_under_the_first_place_the_fragment_is_written():
    message = refused("mixed 2y x 2y")
    assert "the dependent variable '2y' is no name" in message
    assert caret(message) == ("mixed 2y x 2y".index("2y"), 2)


def test_an_empty_fragment_gets_no_caret_line():
    message = refused("mixed y x ||")
    assert "'|| ' must read '|| group: [slopes]'" in message
    assert message.splitlines()[-1] == "  in: mixed y x ||"


REFUSED = [
    ("y ~ (0 | g)", "(0 | g) has no term that varies by group", "(0 | g)"),
    ("y ~ (1 | g | h)", "(1 | g | h) must read (terms | grouping column)", "(1 | g | h)"),
    ("mixed y x, (foo)", "cannot read the Stata option '(foo)'", "(foo)"),
    (
        "mixed y x || g:, foo(1)",
        "the Stata option 'foo' is not supported (supported: noconstant, covariance(), "
        "residuals(), binomial(), family(), link(), reml, mle)",
        "foo(1)",
    ),
    ("mixed", "the Stata command names no dependent variable", "mixed"),
    (
        "mixed y x, cov(un) || g:",
        "the option covariance() does not belong here",
        "mixed y x, cov(un)",
    ),
    (
        "mixed y || g: x: z",
        "cannot read 'x:': use x, i.x, ib2.x, ib(last).x, c.x, a#b or a##b",
        "x:",
    ),
    ("mixed y x || g", "'|| g' must read '|| group: [slopes]'", "g"),
    (
        "mixed y x || _all: x",
        "'|| _all: x': mlm reads _all only as '_all: R.x', an intercept per level of x, "
        "crossed with the other levels (lme4's (1 | x))",
        "_all: x",
    ),
    (
        "mixed y x || b: || _all: R.a",
        "'|| _all: R.a' comes after '|| b:'; _all is the whole sample, so it comes before "
        "the levels nested in it",
        "_all: R.a",
    ),
    (
        "mixed y x || _all: R.a R.b",
        "R.a must be alone after the colon, as in '|| _all: R.a'; give each R. term a level "
        "of its own",
        "R.a",
    ),
    (
        "mixed y x || g: x R.a",
        "R.a must be alone after the colon, as in '|| _all: R.a'; give each R. term a level "
        "of its own",
        "R.a",
    ),
    (
        "mixed y x || _all: R.a, cov(exch)",
        "covariance(exchangeable) is not supported; R.a's levels share one variance: "
        "covariance(identity)",
        "exch",
    ),
    (
        "mixed y x || g: R.a, cov(un)",
        "covariance(unstructured) is not supported; R.a's levels share one variance: "
        "covariance(identity)",
        "un",
    ),
    (
        "mixed y x || _all: R.a, nocons",
        "the option noconstant() does not belong here",
        "_all: R.a, nocons",
    ),
    ("mixed y x, reml || g:, reml", "reml() is given twice", "reml"),
    (
        "mixed y x || g: x, cov(exch)",
        "covariance(exchangeable) is not supported; use independent (Stata's default) or "
        "unstructured",
        "exch",
    ),
    (
        "mixed y x || g: x, COVariance(identity)",
        "covariance(identity) is not supported; use independent (Stata's default) or unstructured",
        "identity",
    ),
    (
        "mixed y x || g: x, cov",
        "covariance() is not supported; use independent (Stata's default) or unstructured",
        "g: x, cov",
    ),
    ("mixed y x || g:, nocons", "'|| g:, nocons' has no effect that varies", "g:, nocons"),
    ("mixed y x || g:, reml mle", "reml and mle are given together; Stata takes one", "mle"),
    ("mixed y x || g:, link(log)", "link() belongs to meglm", "link"),
    ("mixed y x || g:, binomial(n)", "binomial() belongs to melogit", "binomial"),
    (
        "mixed y x || g:, residuals(exchangeable)",
        "only residuals(independent, by(column)) is supported: one residual SD per level of "
        "a column",
        "exchangeable",
    ),
    (
        "mixed y x || g:, residuals(ind, by(a b))",
        "only residuals(independent, by(column)) is supported: one residual SD per level of "
        "a column",
        "ind, by(a b)",
    ),
    (
        "y ~ poly(x, 2)",
        "poly() is not supported: write the powers out, x + I(x^2) (raw polynomials), or "
        "compute orthogonal ones in data.py",
        "poly(x, 2)",
    ),
    ("y ~ offset(x)", "offset() is not supported; compute what you need in data.py", "offset(x)"),
    ("y ~ log(x, 2)", "'log(x, 2)': log() takes one argument here", "log(x, 2)"),
    (
        "y ~ foo(x)",
        "'foo(x)' is a function mlm does not read; it reads factor(), C(), relevel(), I(), "
        "log(), exp(), sqrt(), abs(), scale() and center() (compute other columns in data.py)",
        "foo(x)",
    ),
]


@pytest.mark.parametrize(("formula", "said", "pointed"), REFUSED)
def test_a_refused_formula_says_why_and_points_at_the_fault(formula, said, pointed):
    message = refused(formula)
    assert message.splitlines()[0] == said
    assert caret(message) == (formula.index(pointed), len(pointed))


def test_a_reference_level_given_twice_must_agree():
    message = refused("y ~ relevel(a, ref='a2') + C(a, Treatment('a3'))")
    assert message == (
        "a's reference level is given twice: by 'relevel(a, ref='a2')' and by "
        "'C(a, Treatment('a3'))'; keep one"
    )
    spec = parse("y ~ relevel(a, ref='a2') + C(a, Treatment('a2')):x")
    assert [(r.column, r.level) for r in spec.references] == [("a", "a2")]


def test_stata_levels_keep_their_source_and_every_levels_terms():
    spec = parse("mixed y x || s: x || c:")
    assert [(g.factor, g.source) for g in spec.groups] == [
        (("s",), "|| s: x"),
        (("s",), "|| s: x"),
        (("s", "c"), "|| c:"),
    ]


def test_sigma_formulas_that_are_not_one_sided_or_have_group_terms_are_refused():
    message = refused("y ~ x", sigma="~ x | g")
    assert message.splitlines()[0] == "--sigma takes no group terms"
    assert message.splitlines()[1:] == ["  in: ~ x | g", "          ^"]
    assert refused("y ~ x", sigma="x") == (
        "--sigma 'x' must be a one-sided formula, such as '~ condition'"
    )


@pytest.mark.parametrize("sigma", ["~ 0", "~ -1", "~0"])
def test_a_sigma_formula_without_terms_is_refused(sigma):
    # it wrote a model.py whose likelihood read an undefined sigma (NameError at mlm run;
    # found by the mutation review of codegen/residual.py)
    assert refused("y ~ x", sigma=sigma) == (
        f"--sigma {sigma!r} gives the residual SD no terms (not even a constant): leave "
        "--sigma out for one residual SD, or name the columns it varies by, as in '~ condition'"
    )
    assert parse("y ~ x", sigma="~ 0 + condition").sigma == (Term(("condition",)),)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("sigma", "cannot read it; write it as NAME=Distribution(arguments)"),
        ("sigma=foo.Bar(1)", "'foo.Bar' is not a distribution name"),
        ("sigma=HalfNormal(*a)", "write the arguments out, without * or **"),
        (
            "sigma=HalfNormal(sigma=x)",
            "'x' is not a Python literal; --prior takes numbers (for a prior computed from the "
            "data, edit its line in model.py)",
        ),
    ],
)
def test_a_prior_mlm_cannot_read_is_refused_naming_the_fault(text, said):
    with pytest.raises(MlmError) as caught:
        parse_prior(text)
    assert str(caught.value).startswith(f"--prior {text!r}: {said}")


def test_a_prior_may_name_its_distribution_through_pymc():
    assert parse_prior("sigma=pymc.HalfNormal(1)").distribution == "HalfNormal"


def test_every_factor_and_every_stata_level_keeps_its_terms():
    assert len(parse("y ~ (1 + x || g/k)").groups) == 4  # 2 terms x (g, g:k)
    assert len(parse("mixed y x || s: || c: x").groups) == 3


def test_stata_base_levels_keep_the_text_that_chose_them():
    assert parse("mixed y ib(#2).a || g:").references == (
        Reference("a", position="#2", source="ib(#2).a"),
    )
    assert parse("mixed y ib2.a || g:").references[0].source == "ib2.a"


def test_stata_residuals_by_a_column_are_the_sigma_source():
    spec = parse("mixed y x || g:, residuals(ind, by(b))")
    assert spec.source == "mixed y x || g:, residuals(ind, by(b))"
    assert spec.sigma_source == "residuals(ind, by(b))"
    assert parse("mixed y x || g:").sigma_source == ""


def test_stata_mle_is_noted_and_set_aside():
    assert parse("mixed y x || g:, mle").notes == (
        "Stata's mle option is noted and set aside: mlm's fit is Bayesian (the posterior, with "
        "the priors written in model.py), not a point estimate",
    )


# computed columns ---------------------------------------------------------------------------


def test_numpy_functions_inside_i_are_read_with_or_without_their_module():
    spec = parse("y ~ I(np.log(x) + 1) + I(numpy.sqrt(z)) + I(log(w) * 2)")
    assert spec.derived == (
        Derived("I(log(x) + 1)", "np.log(x) + 1", ("x",)),
        Derived("I(numpy.sqrt(z))", "np.sqrt(z)", ("z",)),
        Derived("I(log(w) * 2)", "np.log(w) * 2", ("w",)),
    )


@pytest.mark.parametrize("written", ["I(log(x, 2))", "I(foo(x))"])
def test_a_call_inside_i_that_is_not_a_one_argument_numpy_function_is_refused(written):
    message = refused(f"y ~ {written}")
    function = written[2 : written.index("(", 2)]
    assert (
        f"'{written}': {function}() is not a function mlm reads inside a formula (it reads "
        "log, log2, log10, log1p, exp, expm1, sqrt, abs)"
    ) in message
    assert caret(message) == (4, len(written))


def test_numpy_functions_are_read_with_or_without_their_module_and_i_of_a_column_is_it():
    spec = parse("y ~ np.log(x) + numpy.sqrt(z) + I(w)")
    assert [t.variables for t in spec.terms[1:]] == [("log(x)",), ("sqrt(z)",), ("w",)]
    assert spec.derived == (
        Derived("log(x)", "np.log(x)", ("x",)),
        Derived("sqrt(z)", "np.sqrt(z)", ("z",)),
    )


@pytest.mark.parametrize("written", ["log(foo(x))", "scale(foo(x))"])
def test_a_call_mlm_does_not_read_inside_a_transform_is_named_with_the_transform(written):
    message = refused(f"y ~ {written}")
    assert f"'{written}': foo() is not a function mlm reads inside a formula" in message
    assert caret(message) == (4, len(written))


@pytest.mark.parametrize("written", ["log(x y)", "not(x)"])
def test_a_call_python_cannot_read_is_refused_and_pointed_at(written):
    message = refused(f"y ~ z + {written}")
    assert message.startswith(f"cannot read '{written}'\n")
    assert caret(message) == (8, len(written))


@pytest.mark.parametrize("written", ["I(2 + 3)", "log(10)"])
def test_a_computed_column_of_no_column_is_refused(written):
    message = refused(f"y ~ x + {written}")
    assert f"'{written}' names no column" in message
    assert caret(message) == (8, len(written))


@pytest.mark.parametrize("written", ["factor()", "factor(x + 1)", "C(2)"])
def test_a_factor_of_anything_but_one_column_is_refused(written):
    message = refused(f"y ~ {written}")
    function = written[: written.index("(")]
    assert f"'{written}': name one column, as in {function}(x)" in message
    assert caret(message) == (4, len(written))


@pytest.mark.parametrize(
    "written", ['relevel(a, "a2")', 'relevel(a, ref="a2")', 'T(a, "a2")', 'T(a, ref="a2")']
)
def test_a_reference_level_is_read_by_position_or_by_keyword(written):
    spec = parse(f"y ~ x + {written}")
    assert spec.categorical == frozenset({"a"})
    assert spec.references == (Reference("a", level="a2", source=written),)


@pytest.mark.parametrize(
    "written",
    [
        'C(a, Treatment("a2"))',
        'C(a, contrast=Treatment("a2"))',
        'C(a, T("a2"))',
        'C(a, Treatment(reference="a2"))',
        'C(a, Treatment(base="a2"))',
        'relevel(as.factor(a), ref = "a2")',
        'relevel(factor(a), "a2")',
        'C(a, contr.treatment("a2"))',
    ],
)
def test_every_way_of_writing_a_treatment_reference_level_is_read(written):
    spec = parse(f"y ~ x + {written}")
    assert spec.terms[-1].variables == ("a",)
    assert spec.categorical == frozenset({"a"})
    assert [(r.column, r.level) for r in spec.references] == [("a", "a2")]


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("relevel(a)", "cannot read 'relevel(a)'"),
        ("factor(a, levels=3)", "cannot read 'factor(a, levels=3)'"),
        ("C(a, Treatment(a2))", "'C(a, Treatment(a2))': write the level in quotes"),
        ("C(a, Sum)", "mlm codes factors by treatment contrasts only"),
    ],
)
def test_a_factor_call_mlm_cannot_code_is_refused_and_pointed_at(written, said):
    message = refused(f"y ~ {written}")
    assert said in message
    assert caret(message) == (4, len(written))


def test_r_contrast_treatment_without_a_level_keeps_the_first_level():
    spec = parse("y ~ x + C(a, contr.treatment)")
    assert spec.categorical == frozenset({"a"})
    assert spec.references == ()


# the response and trials, written back as lme4 text -----------------------------------------


def test_trials_that_are_an_expression_are_bracketed_in_the_failures():
    spec = parse("p(s, n + m) ~ x")
    assert spec.trials == Derived("n + m", "n + m", ("n", "m"))
    assert lme4_formula(spec) == "cbind(s, (n + m) - s) ~ x"


def test_stata_binomial_trials_may_be_a_whole_number():
    spec = parse("melogit y x || g:, binomial(10)")
    assert spec.family == "binomial"
    assert spec.trials == Derived("10", "10", ())
    assert lme4_formula(spec) == "cbind(y, (10) - y) ~ x + (1 | g)"


@pytest.mark.parametrize("argument", ["n + 1", "2.5"])
def test_stata_binomial_trials_of_anything_else_are_refused(argument):
    formula = f"melogit y x || g:, binomial({argument})"
    message = refused(formula)
    assert message.startswith("binomial() takes a variable or a whole number\n")
    assert caret(message) == (formula.index(argument), len(argument))


def test_meglm_with_an_unsupported_family_lists_the_supported_ones():
    formula = "meglm y x || g:, family(weibull)"
    message = refused(formula)
    assert message.startswith(
        "meglm's family(weibull) is not supported: use family(gaussian), family(bernoulli), "
        "family(poisson), family(nbinomial), family(gamma), or melogit ..., binomial(n) for "
        "binomial counts"
    )
    assert caret(message) == (formula.index("weibull"), len("weibull"))


# the code generator: group terms -------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    from test_formula import simulate

    return simulate()


@pytest.fixture(scope="module")
def few():
    """Four rows per level of g: group terms are written non-centred; x is centred at -0.2."""
    from test_formula import simulate

    return simulate(per_group=4)


def code(formula: str, frame, **options) -> str:
    """model.py's code lines, whitespace collapsed (comments left out)."""
    from mlm.codegen import model_source

    source = model_source(parse(formula, **options), frame)
    lines = [line.strip() for line in source.splitlines() if not line.strip().startswith("#")]
    return " ".join(" ".join(lines).split())


def prose(formula: str, frame, **options) -> str:
    """model.py's comments in build(), as one text."""
    from mlm.codegen import model_source

    source = model_source(parse(formula, **options), frame).split("def build", 1)[1]
    lines = [line.strip()[2:] for line in source.splitlines() if line.strip().startswith("# ")]
    return " ".join(lines)


def test_a_factor_slope_in_a_correlated_glm_group_term_is_scaled_and_non_centred(few):
    formula = "yb ~ x + (1 + x:a | g)"
    written = code(formula, few, family="bernoulli")
    assert (
        "X_g = np.column_stack([np.ones(len(data)), x[:, None] * np.eye(len(a_levels))[a_idx]])"
        in written
    )
    assert "sigma=np.array([1, *[1 / x_sd] * (len(a_levels))]), shape=X_g.shape[1]" in written
    assert '"g_effect": ["Intercept", *(f"x:a[{v}]" for v in a_levels)],' in written
    assert 'z_g = pm.Normal("z_g", mu=0, sigma=1, dims=("g", "g_effect"))' in written
    assert 'u_g = pm.Deterministic("u_g", z_g @ chol_g.T, dims=("g", "g_effect"))' in written
    assert "MvNormal" not in written
    said = prose(formula, few, family="bernoulli")
    assert "the non-centred form samples well there: u = z @ chol.T." in said
    assert "half-normal SDs of scale 1 on the link scale per SD of each column" in said
    assert (
        'Where each level\'s data are informative, centre it: u_g = pm.MvNormal("u_g", mu=0, '
        "chol=chol_g, "
        'dims=("g", "g_effect")), in place of z_g.'
    ) in said


def test_two_factors_in_a_correlated_group_term_are_each_coded_by_contrasts(data):
    said = prose("yb ~ (1 + a + b | g)", data, family="bernoulli")
    assert (
        "(1 + a + b | g): the columns whose effects vary by g, as lme4's model matrix has "
        "them: a by treatment contrasts (the reference level gets none); b by treatment "
        "contrasts (the reference level gets none)."
    ) in said


def test_a_factor_in_an_independent_glm_group_term_has_link_scale_sds(few):
    said = prose("yb ~ x + (0 + x:tx:a || g)", few, family="bernoulli")
    assert "Half-normal SDs of scale 1 on the link scale (per SD of a numeric column)" in said
    written = code("yb ~ x + (0 + x:tx:a || g)", few, family="bernoulli")
    assert '"g_x_by_tx_by_a_effect": [*(f"x:tx:a[{v}]" for v in a_levels)],' in written
    assert "X_g_x_by_tx_by_a = (x * tx)[:, None] * np.eye(len(a_levels))[a_idx]" in written


def test_a_variance_prior_on_a_factors_independent_sds_is_taken(few):
    written = code("y ~ x + (0 + a || g)", few, priors=["sigma_g_a^2=Gamma(2, 1)"])
    assert 'sigma2_g_a = pm.Gamma("sigma2_g_a", alpha=2, beta=1, dims="g_a_effect")' in written
    assert (
        'sigma_g_a = pm.Deterministic("sigma_g_a", pm.math.sqrt(sigma2_g_a), dims="g_a_effect")'
    ) in written
    assert 'z_g_a = pm.Normal("z_g_a", mu=0, sigma=1, dims=("g", "g_a_effect"))' in written
    assert (
        'u_g_a = pm.Deterministic("u_g_a", z_g_a * sigma_g_a, dims=("g", "g_a_effect"))'
    ) in written


def test_a_prior_with_mass_below_0_on_correlated_sds_is_refused(data):
    from mlm.codegen import model_source

    spec = parse("y ~ x + (1 + x | g)", priors=["sigma_g=Normal(0, 1)"])
    with pytest.raises(MlmError, match="sigma_g is a standard deviation and must be positive"):
        model_source(spec, data)


def test_two_factors_interacted_in_a_group_term_are_refused_with_what_to_do(data):
    from mlm.codegen import model_source

    with pytest.raises(MlmError) as caught:
        model_source(parse("y ~ x + (1 + a:b | g)"), data)
    assert str(caught.value) == (
        "(1 + a:b | g): 'a:b' interacts 2 categorical columns; a group term takes one "
        "(make their combination one column in data.py)"
    )


@pytest.mark.parametrize("mode", ["centred", "noncentred"])
def test_the_parameterisation_switch_forces_one_form(monkeypatch, data, mode):
    """groups.MODE, the switch tests/validation/parameterisations.py flips."""
    import mlm.codegen.groups as groups

    monkeypatch.setattr(groups, "MODE", mode)
    written = code("y ~ x + (0 + x | g)", data)
    centred = 'u_g_x = pm.Normal("u_g_x", mu=0, sigma=sigma_g_x, dims="g")'
    assert (centred in written) == (mode == "centred")
    assert ('z_g_x = pm.Normal("z_g_x"' in written) == (mode == "noncentred")
    assert f"per level of g, {mode} (forced)." in prose("y ~ x + (0 + x | g)", data)


def test_of_two_centred_group_intercepts_the_one_with_fewer_levels_is_on_the_intercept(data):
    written = code("y ~ x + (1 | g) + (1 | h)", data)  # g: 24 levels, h: 8
    assert 'a_h = pm.Normal("a_h", mu=intercept, sigma=sigma_h, dims="h")' in written
    assert 'u_g = pm.Normal("u_g", mu=0, sigma=sigma_g, dims="g")' in written


def test_a_non_centred_group_intercept_is_never_the_one_on_the_intercept(few):
    frame = few.copy()
    # q: 5 levels, 3 of them with 2 rows and no effect of their own: non-centred.
    frame["q"] = ["q0"] * 2 + ["q1"] * 2 + ["q2"] * 2 + ["q3"] * 45 + ["q4"] * 45
    frame["y"] = frame["y"] + 2.0 * frame["h"]  # h: 8 levels of 12 rows, far apart: centred
    written = code("y ~ x + (1 | h) + (1 | q)", frame)
    assert 'a_h = pm.Normal("a_h", mu=intercept_c, sigma=sigma_h, dims="h")' in written
    assert 'z_q = pm.Normal("z_q", mu=0, sigma=1, dims="q")' in written


def test_a_sigma_formula_is_read_with_or_without_space_and_intercept():
    intercept, x = parse("y ~ x", sigma="~x").sigma
    assert intercept.is_intercept and x.variables == ("x",)
    assert [t.variables for t in parse("y ~ x", sigma="~ 0 + b").sigma] == [("b",)]
    message = refused("y ~ x", sigma="~ foo(b)")
    assert message.startswith("'foo(b)' is a function mlm does not read")
    assert message.splitlines()[1:] == ["  in: ~ foo(b)", "        ^^^^^^"]


@pytest.mark.parametrize(
    ("formula", "said"),
    [
        ("y ~ (1 + {x} | g)", "cannot read 'I(x)' in (1 + {x} | g)"),
        ("y ~ (1 + x | {g})", "cannot read 'I(g)' in (1 + x | {g})"),
        ("y ~ (1 + x | g $)", "cannot parse '(1 + x | g $)': Unexpected character: $"),
    ],
)
def test_what_cannot_be_read_in_a_group_term_is_named_with_the_term(formula, said):
    assert refused(formula).splitlines()[0] == said


def test_a_double_bar_term_keeps_its_source():
    assert {g.source for g in parse("y ~ (1 + x || g)").groups} == {"(1 + x || g)"}


def test_calls_are_read_beside_what_follows_them_and_r_powers_are_crossings():
    assert [t.label for t in parse("y ~ log(x)+z").terms] == ["1", "log(x)", "z"]
    assert [t.label for t in parse("y ~ (a + b)^2").terms] == ["1", "a", "b", "a:b"]
    message = refused("y ~ x", sigma="~ log(b")
    assert message.splitlines() == ["a '(' never closed", "  in: ~ log(b", "        ^^^^^"]


def test_a_number_as_a_grouping_is_refused():
    assert refused("y ~ x + (1 + x | g + 2)").splitlines()[0] == (
        "(1 + x | g + 2): a group term groups by columns (g, g:h, or g/h for nesting); "
        "2 is not a column"
    )


# the code generator: the residual's parameters (codegen/residual.py) -------------------------


def model_error(formula: str, frame, **options) -> str:
    from mlm.codegen import model_source

    with pytest.raises(MlmError) as caught:
        model_source(parse(formula, **options), frame)
    return str(caught.value)


def parameters(formula: str, frame, **options) -> str:
    """The parameters --prior may set, as an unknown name's message lists them."""
    message = model_error(formula, frame, priors=["nosuch=Normal(0, 1)"], **options)
    return message.split("its parameters are: ", 1)[1]


def test_log_sigma_is_linear_in_numeric_factor_and_interaction_terms(data):
    formula, sigma = "y ~ x", "~ x + b + x:b"
    written = code(formula, data, sigma=sigma)
    assert (
        'log_sigma_Intercept = pm.Normal("log_sigma_Intercept", mu=np.log(y_sd), sigma=1) '
        'log_sigma_x = pm.Normal("log_sigma_x", mu=0, sigma=1 / x_sd) '
        'log_sigma_b = pm.Normal("log_sigma_b", mu=0, sigma=1, dims="b_effect") '
        'log_sigma_x_by_b = pm.Normal("log_sigma_x_by_b", mu=0, sigma=1 / x_sd, dims="b_effect")'
    ) in written
    assert (
        "sigma = pm.math.exp( log_sigma_Intercept + log_sigma_x * x_ "
        "+ pt.concatenate([pt.zeros(1), log_sigma_b])[b_] "
        "+ pt.concatenate([pt.zeros(1), log_sigma_x_by_b])[b_] * x_ )"
    ) in written
    assert 'pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")' in written
    said = prose(formula, data, sigma=sigma)
    assert (
        "The residual SD varies: log(sigma) is linear in x + b + x:b. "
        "log_sigma_Intercept: around the log of the outcome's SD. "
        "log_sigma_x: sigma may change by a factor of about e (2.7) per SD of x. "
        "log_sigma_b: sigma may change by a factor of about e (2.7) per level. "
        "log_sigma_x_by_b: sigma may change by a factor of about e (2.7) per SD of x:b."
    ) in said


def test_a_sigma_formula_of_the_intercept_alone_is_linear_in_nothing(data):
    written = code("y ~ x", data, sigma="~ 1")
    assert "sigma = pm.math.exp(log_sigma_Intercept)" in written
    assert "The residual SD varies: log(sigma) is linear in nothing." in prose(
        "y ~ x", data, sigma="~ 1"
    )


def test_a_sigma_formula_of_two_interacted_factors_is_refused(data):
    assert model_error("y ~ x", data, sigma="~ a:b") == (
        "--sigma: interactions of two categorical columns are not supported"
    )


def test_sigma_per_level_is_offered_for_a_factor_or_a_numeric_column_of_few_values(data):
    per_level = "sigma (one per level of {}, in place of log_sigma_*)"
    assert parameters("y ~ x", data, sigma="~ b").endswith(
        "log_sigma_Intercept, log_sigma_b, " + per_level.format("b")
    )
    assert parameters("y ~ x", data, sigma="~ tx").endswith(
        "log_sigma_Intercept, log_sigma_tx, " + per_level.format("tx")
    )
    assert parameters("y ~ x", data, sigma="~ x").endswith("log_sigma_Intercept, log_sigma_x")
    assert parameters("y ~ x", data, sigma="~ 1").endswith("b_x, log_sigma_Intercept")
    assert parameters("y ~ x", data, sigma="~ x + b").endswith("log_sigma_x, log_sigma_b")


def test_sigma_per_level_of_a_numeric_column_takes_at_most_20_distinct_values(data):
    frame = data.copy()
    frame["w"] = frame.index % 20
    frame["v"] = frame.index % 21
    assert parameters("y ~ x", frame, sigma="~ w").endswith(
        "sigma (one per level of w, in place of log_sigma_*)"
    )
    assert parameters("y ~ x", frame, sigma="~ v").endswith("log_sigma_v")
    written = code("y ~ x", frame, sigma="~ w", priors=["sigma=HalfNormal(2)"])
    assert 'sigma = pm.HalfNormal("sigma", sigma=2, dims="w_level")' in written
    assert 'pm.Normal("y", mu=mu, sigma=sigma[w_idx_], observed=y_, dims="obs")' in written
    assert model_error("y ~ x", frame, sigma="~ v", priors=["sigma=HalfNormal(2)"]) == (
        "--prior 'sigma=HalfNormal(2)': a prior on sigma with --sigma means one sigma per "
        "level of its column, which must be one column with a few levels (as in "
        "'~ condition'); '~ v' is not ('v' is numeric, with 21 distinct values). Set priors "
        "on log_sigma_Intercept, log_sigma_v instead, or make a text column of the levels in "
        "data.py"
    )


def test_a_prior_on_sigma_with_a_sigma_formula_of_several_terms_is_refused(data):
    assert model_error("y ~ x", data, sigma="~ x + b", priors=["sigma=HalfNormal(2)"]) == (
        "--prior 'sigma=HalfNormal(2)': a prior on sigma with --sigma means one sigma per "
        "level of its column, which must be one column with a few levels (as in "
        "'~ condition'); '~ x + b' is not. Set priors on log_sigma_Intercept, log_sigma_x, "
        "log_sigma_b instead, or make a text column of the levels in data.py"
    )


def test_a_prior_on_sigma_beside_priors_on_log_sigma_names_each_to_drop(data):
    priors = ["sigma=HalfNormal(2)", "log_sigma_Intercept=Normal(0, 1)", "log_sigma_b=Normal(0, 1)"]
    assert model_error("y ~ x", data, sigma="~ b", priors=priors) == (
        "--prior 'sigma=HalfNormal(2)' gives one sigma per level, in place of "
        "log_sigma_Intercept, log_sigma_b: drop --prior 'log_sigma_Intercept=Normal(0, 1)', "
        "'log_sigma_b=Normal(0, 1)'"
    )


def test_a_prior_on_sigma_with_a_sigma_formula_of_the_intercept_is_the_one_sd(data):
    formula, sigma = "y ~ x", "~ 1"
    written = code(formula, data, sigma=sigma, priors=["sigma=HalfNormal(2)"])
    assert 'b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x_sd) sigma = pm.HalfNormal(' in written
    assert 'sigma = pm.HalfNormal("sigma", sigma=2) mu = intercept + b_x * x_' in written
    assert 'pm.Normal("y", mu=mu, sigma=sigma, observed=y_, dims="obs")' in written
    assert "log_sigma" not in written
    said = prose(formula, data, sigma=sigma, priors=["sigma=HalfNormal(2)"])
    assert (
        "sigma: set by --prior 'sigma=HalfNormal(2)'. (mlm's default: log(sigma) linear in 1.)"
    ) in said
    written = code(formula, data, sigma=sigma, priors=["sigma^2=Gamma(2, 1)"])
    assert (
        'sigma2 = pm.Gamma("sigma2", alpha=2, beta=1) '
        'sigma = pm.Deterministic("sigma", pm.math.sqrt(sigma2))'
    ) in written
    message = model_error(formula, data, sigma=sigma, priors=["sigma=Normal(0, 1)"])
    assert message.startswith(
        "--prior 'sigma=Normal(0, 1)': sigma is a standard deviation and must be positive"
    )


def test_a_prior_on_sigma_per_level_of_a_numeric_column_says_its_values(data):
    said = prose("y ~ x", data, sigma="~ tx", priors=["sigma=HalfNormal(2)"])
    assert (
        'The residual SD: one per level of tx (coords "tx_level": every level, its 2 distinct '
        "values). sigma: set by --prior 'sigma=HalfNormal(2)'. (mlm's default: log(sigma) "
        "linear in tx.)"
    ) in said
    said = prose("y ~ x", data, sigma="~ b", priors=["sigma=HalfNormal(2)"])
    assert 'The residual SD: one per level of b (coords "b": every level). sigma:' in said


@pytest.mark.parametrize("family", ["gaussian", "student_t", "lognormal"])
def test_the_one_residual_sd_takes_only_a_positive_prior_or_one_on_its_variance(data, family):
    frame = data.assign(y=data["y"].abs() + 0.1)
    message = model_error("y ~ x", frame, family=family, priors=["sigma=Normal(0, 1)"])
    assert message.startswith(
        "--prior 'sigma=Normal(0, 1)': sigma is a standard deviation and must be positive, but "
        "Normal(mu=0, sigma=1) puts mass on negative values"
    )
    written = code("y ~ x", frame, family=family, priors=["sigma^2=Gamma(2, 1)"])
    assert 'sigma2 = pm.Gamma("sigma2", alpha=2, beta=1)' in written


def test_student_t_degrees_of_freedom_take_only_a_positive_prior(data):
    message = model_error("y ~ x", data, family="student_t", priors=["nu=Normal(10, 1)"])
    assert message.startswith(
        "--prior 'nu=Normal(10, 1)': nu must be positive, but Normal(mu=10, sigma=1) puts mass "
        "on negative values"
    )
    written = code("y ~ x", data, family="student_t", priors=["nu=Gamma(2, 0.2)"])
    assert 'nu = pm.Gamma("nu", alpha=2, beta=0.2)' in written


@pytest.mark.parametrize(
    ("family", "parameter"),
    [("student_t", "nu"), ("negbinomial", "theta"), ("gamma", "shape"), ("beta", "phi")],
)
def test_a_familys_positive_parameter_takes_only_a_positive_prior(data, family, parameter):
    low, high = data["y"].min(), data["y"].max()
    frame = data.assign(y=(data["y"] - low + 0.5) / (high - low + 1))  # in (0, 1)
    response = "yc" if family == "negbinomial" else "y"
    prior = f"{parameter}=Normal(10, 1)"
    message = model_error(f"{response} ~ x", frame, family=family, priors=[prior])
    assert message.startswith(
        f"--prior '{prior}': {parameter} must be positive, but Normal(mu=10, sigma=1) puts mass "
        "on negative values"
    )


def test_zinb_has_a_structural_zero_probability_and_a_shape(data):
    family = "zero_inflated_negbinomial"
    written = code("yc ~ x", data, family=family)
    assert (
        'zi = pm.Beta("zi", alpha=1, beta=1) theta = pm.Gamma("theta", alpha=0.01, beta=0.01) '
        "eta = intercept + b_x * x_"
    ) in written
    said = prose("yc ~ x", data, family=family)
    assert (
        "zi: the probability that a row is a structural zero, whatever its predictors; brms's "
        "default prior, uniform. theta: the negative binomial's shape"
    ) in said
    message = model_error("yc ~ x", data, family=family, priors=["zi=Normal(0.5, 0.1)"])
    assert message.startswith("--prior 'zi=Normal(0.5, 0.1)': zi is a probability, but ")


# the code generator: the data's columns (codegen/columns.py) --------------------------------


def test_a_predictors_centre_is_its_mean_rounded_to_a_tenth_of_its_sd():
    import numpy as np

    from mlm.codegen.columns import centre_of

    assert centre_of([8, 14]) == 11.0  # SD 3: to a tenth
    whole = centre_of([100, 130])  # SD 15: to units, written as a whole number
    assert whole == 115 and isinstance(whole, int)
    assert centre_of([1234, 1534]) == 1380 and isinstance(centre_of([1234, 1534]), int)
    assert centre_of([-9, 11]) is None  # mean 1 = 0.1 SD: centred already
    assert centre_of([-8.8, 11.2]) == 1  # mean 1.2, just above
    assert centre_of([3, 3, 3]) is None  # no spread
    with np.errstate(invalid="ignore"):
        assert centre_of([1, np.inf]) is None


def test_scale_center_and_standardize_are_written_with_the_datas_mean_and_sd(data):
    from mlm.codegen import model_source

    source = model_source(parse("y ~ scale(tx) + standardize(x) + center(x)"), data)
    tx, x = data["tx"], data["x"]
    assert f"scale_tx = (tx - {tx.mean():.10g}) / {tx.std(ddof=1):.10g}  # scale(tx)" in source
    assert x.mean() < 0  # x - (-0.047), written x + 0.047
    assert (
        f"standardize_x = (x + {-x.mean():.10g}) / {x.std(ddof=0):.10g}  # standardize(x)"
    ) in source
    assert f"center_x = x + {-x.mean():.10g}  # center(x)" in source


@pytest.mark.parametrize(
    ("formula", "chosen"),
    [
        ("mixed y x ib(#1).a || g:", "a1"),
        ("mixed y x ib(#3).a || g:", "a3"),
        ("mixed y x ib(last).a || g:", "a3"),
        ("y ~ x + C(k, Treatment('1'))", 1),  # a numeric column's level named as text
        ("mixed y x ib2.k || g:", 2),
    ],
)
def test_a_reference_level_is_found_among_the_datas_levels(data, formula, chosen):
    from mlm.codegen import classify_columns

    columns = classify_columns(parse(formula), data)
    column = "a" if "a" in columns.references else "k"
    assert columns.references == {column: chosen}
    assert columns.categorical[column] == str(chosen)


def test_the_most_frequent_level_is_the_reference_and_a_tie_goes_to_the_first(data):
    from mlm.codegen import classify_columns

    frame = data.copy()
    frame["a"] = ["a1", "a2"] * (len(frame) // 2)
    frame.loc[:3, "a"] = "a0"  # a1 and a2: 238 rows each
    columns = classify_columns(parse("mixed y x ib(freq).a || g:"), frame)
    assert columns.categorical["a"] == "a1"
    frame.loc[:3, "a"] = "a2"  # a2 the most frequent, not the first
    frame.loc[4:20, "a"] = "a0"
    columns = classify_columns(parse("mixed y x ib(freq).a || g:"), frame)
    assert columns.categorical["a"] == "a2"


def test_a_reference_level_the_data_do_not_have_is_refused_listing_the_levels(data):
    import numpy as np
    import pandas as pd

    assert model_error("mixed y x ib(#5).a || g:", data) == "ib(#5).a: 'a' has 3 levels, no #5"
    assert model_error("y ~ x + C(k, Treatment('9'))", data) == (
        "C(k, Treatment('9')): '9' is not a level of 'k'; its levels are 0, 1, 2"
    )
    # numpy strings in an object column, as data.py may make them
    frame = data.assign(a=pd.Series([np.str_(v) for v in data["a"]], dtype=object))
    assert model_error("y ~ x + C(a, Treatment('a9'))", frame) == (
        "C(a, Treatment('a9')): 'a9' is not a level of 'a'; its levels are 'a1', 'a2', 'a3'"
    )
    letters = "abcdefghijklmnopqrstu"
    for n in (20, 21):
        frame["m"] = [letters[i % n] for i in range(len(frame))]
        shown = ", ".join(repr(c) for c in letters[:20])
        assert model_error("y ~ x + C(m, Treatment('zz'))", frame) == (
            f"C(m, Treatment('zz')): 'zz' is not a level of 'm'; its levels are {shown}"
            + (" ..." if n == 21 else "")
        )


@pytest.mark.parametrize("n", [3, 4, 10, 11])
def test_outcomes_outside_a_gamma_range_are_refused_naming_rows_and_values(data, n):
    import numpy as np

    frame = data.assign(y=data["y"].abs() + 0.5)
    frame.loc[frame.index[5 : 5 + n], "y"] = -np.arange(n) * 0.5
    rows = ", ".join(str(r) for r in range(5, 5 + min(n, 10)))
    more = f" and {n - 10} more" if n > 10 else ""
    values = "0, -0.5, -1" + (", ..." if n > 3 else "")
    assert model_error("y ~ x", frame, family="gamma") == (
        f"family gamma needs 'y' > 0; it is not at rows [{rows}]{more} ({values}): a gamma "
        "model is for positive amounts (brms's hurdle_gamma, not offered by mlm, models zeros "
        "apart)"
    )


def test_a_beta_outcome_of_exactly_0_or_1_is_refused(data):
    frame = data.assign(y=0.5)
    frame.loc[7, "y"] = 0.0
    assert model_error("y ~ x", frame, family="beta").startswith(
        "family beta needs 'y' strictly between 0 and 1; it is not at rows [7] (0): "
    )
    frame.loc[7, "y"] = 1.0
    assert "it is not at rows [7] (1): " in model_error("y ~ x", frame, family="beta")


def test_computed_columns_are_computed_in_floating_point_without_numpy_warnings(data):
    import warnings

    from mlm.codegen import classify_columns

    frame = data.assign(k=data["k"] + 1)  # integers 1..3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        columns = classify_columns(parse("y ~ I(k ** -1) + I(x > 0)"), frame)
        assert columns.numeric == {"I(k^(-1))", "I(x > 0)"}
        assert columns.distinct == {"I(k^(-1))": 3, "I(x > 0)": 2}
        message = model_error("y ~ log(tx)", data)
    assert message.startswith("log(tx) is not finite at rows [1, 2, 3, 5, 7, 9, 10, 16, 18, 19]")


def test_a_two_level_text_outcome_has_its_first_level_in_sorted_order_as_failure(data):
    import numpy as np
    import pandas as pd

    from mlm.codegen import classify_columns

    frame = data.copy()
    # numpy strings in an object column (as data.py may make them), "yes" in the first row
    frame["r"] = pd.Series([np.str_("yes" if v else "no") for v in frame["yb"]], dtype=object)
    frame.loc[0, "r"] = np.str_("yes")
    columns = classify_columns(parse("r ~ x", family="bernoulli"), frame)
    assert columns.outcome == ("no", "yes")
    assert [type(v) for v in columns.outcome] == [str, str]
    assert 'success, failure = "yes", "no"' in code("r ~ x", frame, family="bernoulli")


@pytest.mark.parametrize("n", [5, 6])
def test_a_text_outcome_of_other_than_two_levels_is_refused_showing_five(data, n):
    frame = data.assign(r=[f"v{i % n}" for i in range(len(data))])
    shown = ", ".join(f"'v{i}'" for i in range(5)) + (" ..." if n > 5 else "")
    assert model_error("r ~ x", frame, family="bernoulli") == (
        f"family bernoulli needs a 0/1 or two-level response; 'r' has {n} levels ({shown})"
    )


def test_a_text_response_is_refused_naming_its_first_text_cell(data):
    frame = data.assign(y=data["y"].astype(object))
    frame.loc[5, "y"] = "n/a"
    said = "(or, for family bernoulli, have two levels)"
    assert model_error("y ~ x", frame) == f"the response 'y' must be numeric: 'n/a' at row 5 {said}"
    frame.loc[9, "y"] = "?"
    assert model_error("y ~ x", frame) == (
        f"the response 'y' must be numeric: 'n/a' at row 5 and 1 more {said}"
    )
    frame.loc[12, "y"] = "x"
    assert model_error("y ~ x", frame) == (
        f"the response 'y' must be numeric: 'n/a' at row 5 and 2 more {said}"
    )
    assert model_error("b ~ x", data) == f"the response 'b' must be numeric {said}"


def test_a_groupings_levels_are_its_columns_joined_by_a_colon_as_model_py_joins_them(data):
    # model.py's levels of p:q are p + ":" + q, so ("a", ":b") and ("a:", "b") are one level
    frame = data.assign(p=["a", "a:"] * (len(data) // 2), q=[":b", "b"] * (len(data) // 2))
    assert model_error("y ~ x + (1 | p:q)", frame).startswith(
        "(1 | p:q): the grouping 'p:q' has one level ('a::b'), so there is no between-group "
        "variation to estimate"
    )


def test_binomial_successes_must_be_counts(data):
    frame = data.assign(n=5, s=data["yc"].clip(0, 5).astype(float))
    frame.loc[3, "s"] = 1.5
    formula = "cbind(s, n - s) ~ x"
    assert model_error(formula, frame, family="binomial") == (
        "family binomial needs counts (integers >= 0) in 's'; it has 1.5 at row 3"
    )
    frame.loc[8, "s"] = -1
    assert model_error(formula, frame, family="binomial") == (
        "family binomial needs counts (integers >= 0) in 's'; it has 1.5 at row 3 (rows [3, 8])"
    )


def test_a_true_false_response_is_read_as_0_and_1(data):
    from mlm.codegen import classify_columns

    frame = data.assign(yb=data["yb"].astype(bool))
    for family in ("bernoulli", "poisson", "gaussian"):  # gaussian: a linear probability model
        assert classify_columns(parse("yb ~ x", family=family), frame).outcome is None


@pytest.mark.parametrize("n", [10, 11])
def test_counts_that_are_not_counts_are_refused_naming_ten_rows(data, n):
    frame = data.assign(yc=data["yc"].astype(float))
    frame.loc[frame.index[20 : 20 + n], "yc"] = -1.0
    rows = list(range(20, 30))
    more = " and 1 more" if n == 11 else ""
    assert model_error("yc ~ x", frame, family="poisson") == (
        f"family poisson needs counts (integers >= 0) in 'yc'; it has -1 at row 20 "
        f"(rows {rows}{more})"
    )


def test_a_constant_or_all_zero_response_is_refused_where_it_cannot_be_fitted(data):
    from mlm.codegen import classify_columns

    zeros = data.assign(y=0.0, yb=0, yc=0)
    assert model_error("y ~ x", zeros) == "the response 'y' is constant"
    assert model_error("yc ~ x", zeros, family="poisson") == (
        "family poisson needs counts, not all 0, in 'yc'"
    )
    assert classify_columns(parse("yb ~ x", family="bernoulli"), zeros).outcome is None
    one = zeros.assign(yc=[1] + [0] * (len(data) - 1))
    assert classify_columns(parse("yc ~ x", family="poisson"), one).outcome is None
    ones = zeros.assign(yc=1)  # constant, but a Poisson mean can be estimated
    assert classify_columns(parse("yc ~ x", family="poisson"), ones).outcome is None


def test_binomial_trials_must_be_given_and_be_whole_numbers_at_least_the_successes(data):
    from dataclasses import replace

    from mlm.codegen import classify_columns

    # parse() reads binomial without trials as bernoulli; classify_columns guards anyway
    with pytest.raises(MlmError) as caught:
        classify_columns(replace(parse("yb ~ x"), family="binomial"), data)
    assert str(caught.value) == (
        "family binomial needs the trials: cbind(successes, failures) ~ ... (lme4) or "
        "binomial(n) (Stata); a 0/1 response is family bernoulli"
    )
    frame = data.assign(s=data["yb"], n=1.0)  # one trial each, as many as the successes
    spec = parse("melogit s x || g:, binomial(n)")
    assert classify_columns(spec, frame).outcome is None
    # over 10 rows without trials, one with 2 trials and 3 successes, one with 1.5 trials
    frame.loc[4, "n"] = 0
    frame.loc[frame.index[(frame["s"] == 1)][:12], "n"] = 0
    frame.loc[1, "s"], frame.loc[1, "n"] = 3, 2
    frame.loc[6, "s"], frame.loc[6, "n"] = 0, 1.5
    n, s = frame["n"], frame["s"]
    bad = frame.index[(n < s) | (n < 1) | (n != n.round())]
    assert model_error("melogit s x || g:, binomial(n)", frame) == (
        "the trials n must be whole numbers >= 1 and >= s; they are not at rows "
        f"{bad[:10].tolist()}"
    )
    assert len(bad) > 10


def test_a_column_name_must_be_a_python_name_and_may_have_capitals(data):
    from mlm.codegen import classify_columns

    frame = data.assign(**{"my col": data["x"]})
    assert model_error("y ~ `my col`", frame) == (
        "column 'my col': rename it to a Python name (letters, digits, _)"
    )
    columns = classify_columns(parse("y ~ Xb_1"), data.rename(columns={"x": "Xb_1"}))
    assert columns.numeric == {"Xb_1"}


@pytest.mark.parametrize("rows", [[3, 7], list(range(2, 12)), list(range(2, 13))])
def test_missing_values_are_refused_naming_up_to_ten_rows(data, rows):
    import numpy as np

    frame = data.copy()
    frame.loc[rows, "x"] = np.nan
    shown = ", ".join(map(str, rows[:10])) + (" ..." if len(rows) > 10 else "")
    assert model_error("y ~ x", frame) == (
        f"column 'x' has {len(rows)} missing value(s), at rows [{shown}] (rows counted from 0 "
        "after the header); drop or fill them in data.py's load() (or the file it reads) and "
        "run this again"
    )


def test_a_computed_column_of_a_text_column_is_refused(data):
    assert model_error("y ~ log(a)", data) == "log(a): column 'a' is not numeric"


@pytest.mark.parametrize("n", [10, 11])
def test_a_computed_column_that_is_not_finite_is_refused_naming_rows_and_values(data, n):
    frame = data.assign(tx=1)
    frame.loc[2 : 1 + n, "tx"] = 0
    more = " and more" if n > 10 else ""
    assert model_error("y ~ I(x / tx)", frame) == (
        f"I(x / tx) is not finite at rows {list(range(2, 12))}{more} (where x, tx = "
        f"{frame['x'][2]}, 0); change the formula, or the rows in data.py"
    )


def test_a_computed_column_of_few_values_may_have_a_sigma_per_level(data):
    per_level = ", sigma (one per level of I(tx * 2), in place of log_sigma_*)"
    assert parameters("y ~ x", data, sigma="~ I(tx * 2)").endswith(per_level)
    assert parameters("y ~ x", data, sigma="~ I(x * 2)").endswith("log_sigma_x_times_2")


def test_a_factor_of_one_level_is_refused(data):
    assert model_error("y ~ a + C(b)", data.assign(b="hi")) == (
        "column 'b' is categorical with one level ('hi'): it has no effect to estimate; drop "
        "it from the formula"
    )


def test_a_chosen_reference_level_is_kept_as_a_python_value(data):
    import numpy as np
    import pandas as pd

    from mlm.codegen import classify_columns

    frame = data.assign(a=pd.Series([np.str_(v) for v in data["a"]], dtype=object))
    columns = classify_columns(parse("y ~ x + C(a, Treatment('a2'))"), frame)
    assert [(k, v, type(v)) for k, v in columns.references.items()] == [("a", "a2", str)]


def test_a_true_false_predictor_is_numeric(data):
    from mlm.codegen import classify_columns

    columns = classify_columns(parse("y ~ x + f"), data.assign(f=data["tx"].astype(bool)))
    assert columns.numeric == {"x", "f"}
    assert columns.distinct == {"x": data["x"].nunique(), "f": 2}


def test_a_constant_predictor_is_refused_naming_the_group_terms_it_is_in(data):
    frame = data.assign(z=2.5)
    said = "'z' is constant (2.5 in every row): a slope on a constant cannot be told apart "
    said += "from the intercept"
    assert model_error("y ~ x + z", frame) == f"{said}; drop it from the formula"
    assert model_error("y ~ x + z + (1 + z | g) + (0 + z | h)", frame) == (
        f"{said} (in (1 + z | g), (0 + z | h)); drop it from the formula"
    )
    # the value as a number, not numpy's repr (np.float64(1.0)); an integer column too
    assert model_error("y ~ x + z", data.assign(z=1)).startswith("'z' is constant (1 in")


def test_a_grouping_needs_two_levels_and_fewer_levels_than_rows(data):
    from mlm.codegen import classify_columns

    columns = classify_columns(parse("y ~ x + (1 | b)"), data)  # two levels
    assert columns.group_levels == {("b",): 2}
    assert model_error("y ~ x + (1 | b)", data.assign(b="hi")) == (
        "(1 | b): the grouping 'b' has one level ('hi'), so there is no between-group "
        "variation to estimate; drop the term or group by a column with several levels"
    )
    assert model_error("mixed y x || id:", data.assign(id=range(len(data)))) == (
        "|| id:: the grouping 'id' has as many levels as the data have rows (480), so its "
        "effects cannot be told apart from the residual; lme4 refuses this too. Drop the "
        "term, or group by a column whose levels hold several rows each"
    )


def test_groupings_nest_in_those_of_fewer_levels_and_terms_constant_within_them_are_found(data):
    from mlm.codegen import classify_columns

    # w is one value per level of g; the rows are labelled from 1000 (not 0, 1, ...)
    frame = data.assign(w=data["g"] * 0.5 + 1, g2=[f"G{v}" for v in data["g"]])
    frame.index = frame.index + 1000
    columns = classify_columns(parse("y ~ x + log(w) + (1 | g) + (1 | g:k)"), frame)
    assert columns.nests_in == {("g",): set(), ("g", "k"): {("g",)}}
    assert {f: {t.label for t in terms} for f, terms in columns.constant_within.items()} == {
        ("g",): {"log(w)"},
        ("g", "k"): {"log(w)"},
    }
    # the same levels under two names: neither nests in the other
    columns = classify_columns(parse("y ~ x + (1 | g) + (1 | g2)"), frame)
    assert columns.nests_in == {("g",): set(), ("g2",): set()}


# the code generator: --prior checked against PyMC (codegen/priors.py) -----------------------


def prior_refused(text: str, kind: str) -> str:
    from mlm.codegen.priors import prior_arguments

    with pytest.raises(MlmError) as caught:
        prior_arguments(parse_prior(text), kind)
    return str(caught.value)


def test_an_unknown_distribution_is_named_with_up_to_three_close_ones():
    assert prior_refused("sigma=Norml(1)", "sd") == (
        "--prior 'sigma=Norml(1)': PyMC has no distribution 'Norml'; did you mean Normal or "
        "MvNormal or LogNormal?"
    )
    assert prior_refused("sigma=Xyzzy(1)", "sd") == (
        "--prior 'sigma=Xyzzy(1)': PyMC has no distribution 'Xyzzy'"
    )


def test_a_probability_takes_a_prior_on_0_to_1_only():
    from mlm.codegen.priors import prior_arguments

    assert prior_arguments(parse_prior("zi=Uniform(0, 1)"), "probability") == "lower=0, upper=1"
    for lower, upper in [(-1.5, 0.5), (0.5, 2.5)]:
        text = f"zi=Uniform({lower}, {upper})"
        assert prior_refused(text, "probability") == (
            f"--prior '{text}': zi is a probability, but Uniform(lower={lower}, upper={upper}) "
            "puts mass outside (0, 1); use Beta or Uniform(0, 1)"
        )


def test_a_prior_with_mass_below_0_on_an_sd_is_refused_naming_positive_ones():
    assert prior_refused("sigma=Normal(0, 1)", "sd") == (
        "--prior 'sigma=Normal(0, 1)': sigma is a standard deviation and must be positive, but "
        "Normal(mu=0, sigma=1) puts mass on negative values; use a positive distribution such "
        "as HalfNormal, Exponential, Gamma or Uniform(0, upper)"
    )
    assert prior_refused("sigma=Uniform(-1, 1)", "sd").endswith(
        "puts mass on negative values; use a positive distribution such as HalfNormal, "
        "Exponential, Gamma or Uniform(0, upper)"
    )
    assert prior_refused("nu=Cauchy(0, 1)", "positive").endswith(
        "nu must be positive, but Cauchy(alpha=0, beta=1) puts mass on negative values; use a "
        "positive distribution such as HalfCauchy, HalfNormal, Exponential, Gamma or "
        "Uniform(0, upper)"
    )


# the code generator: the outcome and its family (codegen/response.py) ----------------------


def test_a_two_level_text_outcome_is_described_and_coded_where_it_can_be_changed(data):
    from mlm.codegen import model_source

    frame = data.assign(r=["yes" if v else "no" for v in data["yb"]])
    source = model_source(parse("r ~ x", family="bernoulli"), frame)
    docstring = " ".join(source.split('"""')[1].split())
    assert (
        "family bernoulli with a logit link; the outcome is 1 when r is 'yes' (success) and 0 "
        "when it is 'no', as glmer reads a two-level factor (change it in build())."
    ) in docstring
    assert (
        "r is 1 for 'yes' (success) and 0 for 'no', as glmer reads a two-level factor: its "
        "first level (in sorted order) is failure. Change the success level here."
    ) in prose("r ~ x", frame, family="bernoulli")


def test_a_whole_number_of_trials_is_the_same_in_every_row(data):
    frame = data.assign(yc=data["yc"].clip(0, 10))
    written = code("melogit yc x || g:, binomial(10)", frame)
    assert "trials = np.full(len(data), 10)" in written
    assert 'trials_ = pm.Data("trials", trials, dims="obs")' in written
    assert 'pm.Binomial("yc", n=trials_, logit_p=eta, observed=y_, dims="obs")' in written


# the code generator: population-level terms (codegen/population.py) ------------------------


@pytest.fixture(scope="module")
def cells(data):
    """simulate()'s data with a third text column, c (three levels)."""
    return data.assign(c=data["k"].map({0: "c0", 1: "c1", 2: "c2"}))


def test_a_glm_intercept_at_the_centres_is_on_the_link_scale_and_reported_at_0(few):
    # few's x is centred at -0.2
    said = prose("yb ~ x", few, family="bernoulli")
    assert (
        "Intercept_centred: the log-odds at the centres (x = -0.2), where the intercept does "
        "not trade off against the slopes. A prior given for Intercept replaces this one (as "
        "in brms)."
    ) in said
    assert (
        "Intercept: the log-odds when every predictor is 0 (and at reference levels), as lme4 "
        "reports it."
    ) in said
    written = code("yb ~ x", few, family="bernoulli")
    assert 'intercept_c = pm.Normal("Intercept_centred", mu=0, sigma=2.5)' in written
    assert 'pm.Deterministic("Intercept", intercept_c - b_x * x_centre)' in written


@pytest.mark.parametrize(
    ("family", "response", "mu", "mean"),
    [
        ("lognormal", "y", "y_mean", "the mean of log(y)"),
        ("poisson", "yc", "0", "the log mean count"),
        ("bernoulli", "yb", "0", "the log-odds"),
    ],
)
def test_a_factor_without_the_intercept_has_a_mean_at_each_level(data, family, response, mu, mean):
    frame = data.assign(y=data["y"].abs() + 0.1)
    formula = f"{response} ~ 0 + a"
    written = code(formula, frame, family=family)
    scale = "5 * y_sd" if family == "lognormal" else "5"
    assert f'b_a = pm.Normal("b_a", mu={mu}, sigma={scale}, dims="a")' in written
    assert f"b_a: {mean} at each level of a, weakly informative." in prose(
        formula, frame, family=family
    )


def test_a_factor_coded_by_every_level_after_a_slope_keeps_the_slopes_prior(data):
    written = code("y ~ 0 + x + a", data)
    assert 'b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x_sd)' in written
    assert 'b_a = pm.Normal("b_a", mu=y_mean, sigma=5 * y_sd, dims="a")' in written
    assert "mu = b_x * x_ + b_a[a_]" in written


def test_an_interaction_of_two_factors_alone_is_one_factor_of_their_cells(data):
    """a:b without a and b (Stata's a#b): every cell but the first, which the intercept
    holds; without the intercept, every cell."""
    from mlm.codegen import model_source

    source = model_source(parse("y ~ a:b"), data)
    assert (
        "coords = {\n"
        '        "obs": data.index.to_numpy(),\n'
        '        "a": [str(v) for v in a_levels],\n'
        '        "b": [str(v) for v in b_levels],\n'
        '        "b_a_by_b_cell": [f"{u}:{v}" for u in a_levels for v in b_levels][1:],\n'
        "    }"
    ) in source
    # no level of a or b is a reference: build() says none is
    assert "treatment coding" not in source.split("def build", 1)[1]
    written = code("y ~ a:b", data)
    assert (
        'b_a_by_b = pm.Normal("b_a_by_b", mu=0, sigma=2.5 * y_sd, dims="b_a_by_b_cell")'
    ) in written
    assert (
        "mu = intercept + pt.concatenate([pt.zeros(1), b_a_by_b])[a_ * len(b_levels) + b_]"
    ) in written
    assert "b_a_by_b: each cell of a:b but the first, which the intercept holds." in prose(
        "y ~ a:b", data
    )

    written = code("y ~ 0 + a:b", data)
    assert '"b_a_by_b_cell": [f"{u}:{v}" for u in a_levels for v in b_levels], }' in written
    assert "mu = b_a_by_b[a_ * len(b_levels) + b_]" in written
    said = prose("y ~ 0 + a:b", data)
    assert "b_a_by_b: each cell of a:b. " in said
    assert "the intercept holds" not in said


def test_a_slope_by_the_cells_of_two_factors_multiplies_the_cells_effect(data):
    written = code("y ~ x:a:b", data)
    assert (
        "mu = intercept + pt.concatenate([pt.zeros(1), b_x_by_a_by_b])"
        "[a_ * len(b_levels) + b_] * x_"
    ) in written


def test_three_factors_interact_with_their_lower_order_terms_by_contrasts(cells):
    written = code("y ~ a*b*c", cells)
    assert (
        'b_a_by_b_by_c = pm.Normal( "b_a_by_b_by_c", mu=0, sigma=2.5 * y_sd, '
        'dims=("a_effect", "b_effect", "c_effect") )'
    ) in written
    assert (
        "pt.set_subtensor( pt.zeros((len(a_levels), len(b_levels), len(c_levels)))[1:, 1:, 1:], "
        "b_a_by_b_by_c )[a_, b_, c_]"
    ) in written


@pytest.mark.parametrize("formula", ["y ~ a:b:c", "y ~ a + a:b:c"])
def test_three_factors_interacted_without_their_lower_order_terms_are_refused(cells, formula):
    assert model_error(formula, cells) == (
        "a:b:c: an interaction of 3 categorical columns without their lower-order terms is "
        "not supported; write them out (a*b*c)"
    )


# the code generator: model.py's docstring and statistics (codegen/writer.py) ---------------


def docstring(formula: str, frame, **options) -> str:
    """model.py's module docstring."""
    from mlm.codegen import model_source

    return model_source(parse(formula, **options), frame).split('"""')[1]


def test_the_docstring_writes_the_sigma_formula_under_the_formula(data):
    said = docstring("y ~ x", data, sigma="~ x + b", priors=["Intercept=Normal(0, 100)"])
    assert "\n    y ~ x\n    log(sigma) ~ x + b\n\nfamily gaussian." in said
    assert "\n    y ~ x\n    log(sigma) ~ 0 + b\n\nfamily gaussian." in docstring(
        "y ~ x", data, sigma="~ 0 + b"
    )


def test_the_docstring_says_sigma_is_one_per_level_only_for_a_sigma_per_level(data):
    one = ["sigma=HalfNormal(1)"]
    said = docstring("y ~ x", data, sigma="~ b", priors=one)
    assert "\n    y ~ x\n    sigma: one per level of b\n\nfamily gaussian." in said
    # --sigma "~ 1" with a prior on sigma is the one residual SD: nothing to add
    assert "\n    y ~ x\n\nfamily gaussian." in docstring("y ~ x", data, sigma="~ 1", priors=one)


def test_the_family_is_read_back_from_a_model_py_mlm_wrote_and_only_from_one(data):
    from mlm.codegen import model_source, written_family

    written = model_source(parse("yb ~ x + (1 | g)", family="bernoulli"), data)
    assert written_family(written) == "bernoulli"
    assert written_family(model_source(parse("y ~ x"), data)) == "gaussian"
    assert written_family('"""A model written by hand.\n\nfamily poisson\n"""\n') is None
    assert written_family("# family poisson\n" + written) is None  # not its docstring


def test_the_docstring_wraps_a_stata_note_at_88_characters(data):
    said = docstring("mixed y x || g:, mle", data)
    assert (
        "\n\nStata's mle option is noted and set aside: mlm's fit is Bayesian (the posterior, "
        "with\nthe priors written in model.py), not a point estimate.\n\n"
    ) in said


def test_a_computed_column_in_the_only_term_is_explained(data):
    assert "\n\nComputed columns, as the formula writes them: I(x^2) is x_pow_2.\n" in docstring(
        "y ~ 0 + I(x^2)", data
    )


def test_a_long_formula_is_wrapped_at_spaces_within_84_characters(data):
    """Never inside a column's name or a level's text, however long."""
    frame = data.assign(dose=data["b"].map({"hi": "high-dose", "lo": "low-dose"}))

    def formula_lines(formula: str, **columns) -> list[str]:
        said = docstring(formula, frame.assign(**columns))
        return said.split("(lme4 syntax)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()

    name = "v" * 72  # "y ~ x + NAME +" is 82 characters, "y ~ x + NAME + tx" 85
    assert formula_lines(f"y ~ x + {name} + tx", **{name: data["x"]}) == [
        f"    y ~ x + {name} +",
        "        tx",
    ]
    name = "w" * 90
    assert formula_lines(f"y ~ x + {name}", **{name: data["x"]}) == [
        "    y ~ x +",
        f"        {name}",
    ]
    name = "v" * 39
    assert formula_lines(f'y ~ {name} + C(dose, Treatment("low-dose"))', **{name: data["x"]}) == [
        f"    y ~ {name} + relevel(factor(dose), ref =",
        '        "low-dose")',
    ]


def test_the_summary_of_a_model_of_group_effects_alone_names_no_predictors(data):
    from mlm.codegen import model_source

    source = model_source(parse("y ~ 0 + (1 | g)"), data)
    assert '    """The model of y, with effects varying by g."""' in source
    assert "mu = u_g[g_]" in " ".join(source.split())
    assert model_error("y ~ 0", data) == "'y ~ 0' has no terms: write at least 1, as in 'y ~ 1'"


def test_a_module_only_a_comment_names_is_not_imported(data):
    # the default prior --prior replaced is shown with y_mean's expression, np.log(y).mean()
    from mlm.codegen import model_source

    frame = data.assign(y=data["y"].abs() + 0.1)
    spec = parse("y ~ 1", family="lognormal", priors=["Intercept=Normal(0, 1)"])
    source = model_source(spec, frame)
    assert "# (mlm's default: Normal(mu=np.log(y).mean(), sigma=5 * y_sd).)" in source
    assert "y_sd = 0.8055  # np.log(y).std(): the SD of log(y)" in source
    assert '"""\n\nimport pymc as pm\n\n\ndef build(data):' in source


# the code generator: build()'s body (codegen/body.py, codegen/names.py) ---------------------


def test_a_negative_number_added_in_a_computed_column_is_subtracted(data):
    written = code("y ~ I(x + -10) + I(x - -10)", data)
    assert "x_plus_minus_10 = x - 10 # I(x + -10)" in written
    assert "x_minus_minus_10 = x + 10 # I(x - -10)" in written


def test_writing_a_model_of_a_computed_column_that_overflows_on_the_way_warns_of_nothing(data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = code("y ~ I(1 / (1 + exp(1000 * x)))", data)
    assert "= 1 / (1 + np.exp(1000 * x)) # I(1 / (1 + exp(1000 * x)))" in written


def test_a_variance_prior_renames_only_the_sigma_of_the_sds_name(data):
    frame = data.assign(sigmas=data["g"])
    written = code("y ~ x + (1 | sigmas)", frame, priors=["sigma_sigmas^2=Gamma(1, 1)"])
    assert 'sigma2_sigmas = pm.Gamma("sigma2_sigmas", alpha=1, beta=1)' in written
    assert (
        'sigma_sigmas = pm.Deterministic("sigma_sigmas", pm.math.sqrt(sigma2_sigmas))'
    ) in written
    assert "sigma_sigmas: set by --prior 'sigma_sigmas^2=Gamma(1, 1)', on the variance " in prose(
        "y ~ x + (1 | sigmas)", frame, priors=["sigma_sigmas^2=Gamma(1, 1)"]
    )


def test_a_row_of_each_level_is_read_with_a_comment_naming_the_grouping():
    import pandas as pd
    from test_hierarchical_centring import DATA

    pastes = pd.read_csv(DATA / "pastes.csv")  # batch:cask is centred on its batch's effect
    assert (
        "A row of each level of batch:cask (its first), to read there what is constant within "
        "a level."
    ) in prose("strength ~ 1 + (1 | batch/cask)", pastes)


@pytest.mark.parametrize(
    ("column", "family", "renamed"),
    [
        ("sigma", None, "sigma_col"),
        ("nu", "student_t", "nu_col"),
        ("Intercept", None, "Intercept_col"),
        ("data", None, "data_col"),
        ("class", None, "class_col"),  # a Python keyword
    ],
)
def test_a_predictor_named_as_a_name_build_takes_is_renamed_and_the_model_builds(
    data, column, family, renamed
):
    """A pm.Data named "sigma" (or "nu", "Intercept") would clash with the parameter."""
    from mlm.codegen import model_source

    frame = data.assign(**{column: data["x"]})
    source = model_source(parse(f"y ~ {column}", family=family), frame)
    written = " ".join(source.split())
    assert f'{renamed} = data["{column}"].to_numpy(dtype=float)' in written
    assert f'{renamed}_ = pm.Data("{renamed}", {renamed}, dims="obs")' in written
    namespace: dict = {}
    exec(source, namespace)
    model = namespace["build"](frame)
    assert renamed in model.named_vars


@pytest.mark.parametrize("form", ["(1 | sigma)", "(1 + x | sigma)"])
def test_a_grouping_named_as_a_parameter_gets_its_own_dimension_and_the_model_builds(data, form):
    """A dimension named "sigma" clashed with the residual SD: build() failed with
    "Variable name 'sigma' conflicts with an existing dimension name"."""
    from mlm.codegen import model_source

    frame = data.assign(sigma=data["g"])
    source = model_source(parse(f"y ~ x + {form}"), frame)
    assert '"sigma_level": [str(v) for v in sigma_levels],' in source
    namespace: dict = {}
    exec(source, namespace)
    model = namespace["build"](frame)
    assert "sigma" in model.named_vars and "sigma_level" in model.coords
    assert model.named_vars_to_dims["u_sigma"][0] == "sigma_level"


def test_a_predictors_sd_is_named_after_its_columns(data):
    written = code("y ~ Xv + x:tx", data.assign(Xv=data["x"]))
    assert "Xv_sd = 0.9554 # Xv.std()" in written
    assert "x_by_tx_sd = 0.6923 # (x * tx).std()" in written


def test_scale_standardize_and_center_say_their_numbers_are_the_datas(data):
    said = prose("y ~ scale(x) + standardize(tx) + center(x)", data)
    for column in ("scale(x)", "standardize(tx)", "center(x)"):
        assert f"{column}, the data's mean and SD as numbers: new rows scale alike" in said


def test_a_grouping_of_two_columns_ignores_the_reference_level_of_its_first(data):
    written = code('y ~ C(a, Treatment("a2")) + (1 | a:g)', data)
    assert 'a_cat = pd.Categorical(data["a"])' in written
    assert (
        'a_by_g_idx, a_by_g_levels = pd.factorize( (data["a"].astype(str) + ":" + '
        'data["g"].astype(str)).where( data[["a", "g"]].notna().all(axis=1) ), sort=True, )'
    ) in written


def test_a_slope_sampled_on_the_unit_scale_is_a_parameter_a_prior_may_name(data):
    frame = data.assign(z=data["x"] * 100)  # prior SD 2.5 * y_sd / z_sd: 0.04
    assert 'z_b_z = pm.Normal("z_b_z", mu=0, sigma=1)' in code("y ~ z", frame)
    assert parameters("y ~ z", frame) == "Intercept, b_z, sigma"
    assert (
        "b_z: weakly informative, 2.5 outcome SDs per SD of z (rstanarm's default scale). "
        "Sampled on the unit scale, as z_b_z: its prior SD (0.037) is small beside the +-1 by "
        "which samplers jitter their starting point, which would start it up to 27 prior SDs "
        "out, where a chain can stick."
    ) in prose("y ~ z", frame)


def test_a_prior_sd_of_exactly_1_is_sampled_as_it_is(data):
    frame = data.assign(z=[2.5, -2.5] * (len(data) // 2))  # z_sd = 2.5: prior SD 2.5 / 2.5
    written = code("yb ~ z", frame, family="bernoulli")
    assert 'b_z = pm.Normal("b_z", mu=0, sigma=2.5 / z_sd)' in written
    assert "z_b_z" not in written


def test_a_statistic_is_named_apart_from_the_columns_and_their_tensors(data):
    """x's SD is not x_sd when a column is called x_sd, nor x_sd_, its pm.Data tensor."""
    from mlm.codegen import model_source

    frame = data.assign(x_sd=data["x"] * 2 + 1)
    source = model_source(parse("y ~ x + x_sd"), frame)
    written = " ".join(source.split())
    assert "x_sd__ = 0.9554 # x.std() x_sd_sd = 1.911 # x_sd.std()" in written
    assert 'x_sd_ = pm.Data("x_sd", x_sd, dims="obs")' in written
    assert 'b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y_sd / x_sd__)' in written
    namespace: dict = {}
    exec(source, namespace)
    model = namespace["build"](frame)
    assert model["b_x"].ndim == 0


def test_group_terms_of_one_grouping_with_the_same_name_are_told_apart_by_their_terms(data):
    assert parameters("y ~ x + (0 + x + tx | g) + (1 + b | g)", data) == (
        "Intercept, b_x, sigma_g, sigma_g_Intercept_b, sigma"
    )


def test_without_the_intercept_only_the_first_factor_is_coded_by_every_level(data):
    written = code("y ~ 0 + a + b", data)
    assert 'b_a = pm.Normal("b_a", mu=y_mean, sigma=5 * y_sd, dims="a")' in written
    assert 'b_b = pm.Normal("b_b", mu=0, sigma=2.5 * y_sd, dims="b_effect")' in written
    assert "mu = b_a[a_] + pt.concatenate([pt.zeros(1), b_b])[b_]" in written


# the code generator: group terms centred on the rest of the model (codegen/groups.py) -------


def test_a_correlated_term_centred_on_the_intercept_samples_its_intercepts_around_it():
    from test_formula import simulate

    frame = simulate(per_group=200)
    written = code("y ~ x + (1 + x | g)", frame)
    assert "mean_g = pt.concatenate([pt.stack([intercept]), pt.zeros(1)])" in written
    assert 'a_g = pm.MvNormal("a_g", mu=mean_g, chol=chol_g, dims=("g", "g_effect"))' in written
    assert 'u_g = pm.Deterministic("u_g", a_g - mean_g, dims=("g", "g_effect"))' in written
    said = prose("y ~ x + (1 + x | g)", frame)
    assert (
        "(1 + x | g): an intercept and a slope on x per level of g, correlated, centred, the "
        "intercepts on the intercept: each level's data say more"
    ) in said
    assert (
        "intercept 70, at least 45; slope on x 45, at least 29; the lower ends of their 90 % "
        "intervals are all >= 1; from"
    ) in said
    assert (
        "so the centred form samples best: a ~ MvNormal((intercept, 0, ...), chol), "
        "u = a - (intercept, 0, ...). The covariance"
    ) in said


def test_a_correlated_term_centred_per_level_says_on_what():
    from test_hierarchical_centring import trial

    said = prose("y ~ time * arm + (1 + time | subject)", trial())
    assert (
        "centred, the intercepts on the rest of the model at each level (the intercept and "
        "arm's effect): each level's data"
    ) in said
    assert (
        "a ~ MvNormal((level_mean_subject, 0, ...), chol), u = a - (level_mean_subject, 0, ...)."
    ) in said


@pytest.mark.parametrize(
    ("formula", "what"),
    [
        ("y ~ time + arm + dose + (1 | subject)", "the intercept, arm's effect and dose's effect"),
        ("y ~ 0 + arm + time + (1 | subject)", "arm's effect"),
    ],
)
def test_a_group_term_centred_per_level_names_each_part_of_its_mean(formula, what):
    from test_hierarchical_centring import trial

    frame = trial()
    frame["dose"] = (frame["subject"] % 3) * 10.0 + frame["subject"] % 5  # constant per subject
    assert (
        f"(1 | subject): an intercept per level of subject, centred on the rest of the model at "
        f"each level ({what}) (a_subject ~ Normal(level_mean_subject, sigma_subject)):"
    ) in prose(formula, frame)


def test_information_of_100_or_more_is_written_as_a_whole_number():
    from test_formula import simulate

    said = prose("y ~ x + (1 | g)", simulate(per_group=400))
    assert "n sigma_g^2 / sigma^2: intercept 131, at least 85;" in said


@pytest.mark.parametrize("mode", ["rows", "rows+levels"])
def test_the_rows_switch_centres_by_the_rows_per_level(monkeypatch, mode):
    """groups.MODE "rows" and "rows+levels" (tests/validation/parameterisations.py): the
    decision by the median rows per level (>= 6), and for "rows+levels" at least 7 levels."""
    from test_formula import simulate

    import mlm.codegen.groups as groups

    monkeypatch.setattr(groups, "MODE", mode)
    said = prose("y ~ x + (1 | g)", simulate())
    assert (
        "(1 | g): an intercept per level of g, centred on the intercept (a_g ~ Normal(intercept, "
        "sigma_g)): its levels hold many rows each (20, the median; >= 6), so the data pin each "
        "effect down and the centred form samples best;"
    ) in said
    said = prose("y ~ x + (1 | g)", simulate(per_group=4))
    assert (
        "(1 | g): an intercept per level of g, non-centred: its levels hold few rows each (4, the "
        "median; < 6), so the effects lean on sigma and the non-centred form samples best, even "
        "when sigma is near 0."
    ) in said
    written = code("y ~ x + (1 | g)", simulate(n_groups=4, per_group=100))  # 4 levels
    assert ('z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g")' in written) == (mode != "rows")
    written = code("y ~ x + (1 | g)", simulate(n_groups=7, per_group=6))  # at both bounds
    assert 'a_g = pm.Normal("a_g", mu=intercept, sigma=sigma_g, dims="g")' in written


def test_the_information_point_switch_centres_by_the_estimates_alone(monkeypatch):
    """groups.MODE "info_point" (tests/validation/parameterisations.py): each estimate of the
    information per level >= 1, without the lower ends of their intervals."""
    from test_formula import simulate

    import mlm.codegen.groups as groups

    monkeypatch.setattr(groups, "MODE", "info_point")
    said = prose("y ~ x + (1 | g)", simulate(per_group=200))
    assert (
        "(1 | g): an intercept per level of g, centred on the intercept (a_g ~ Normal(intercept, "
        "sigma_g)): each level's data say more about its effect than the population distribution "
        "does (expected information per level, n sigma_g^2 / sigma^2: intercept 70; all >= 1; "
        "from a one-way ANOVA"
    ) in said
    # 3 rows per level: 1.9, at least 0.67; centred by the estimate, not by its lower end
    written = code("y ~ x + (1 | g)", simulate(per_group=3))
    assert 'a_g = pm.Normal("a_g", mu=intercept_c, sigma=sigma_g, dims="g")' in written
    said = prose("y ~ x + (1 + x | g)", simulate())
    assert (
        "correlated, non-centred: a level's data may say less about its effect than the "
        "population distribution does (expected information per level, n sigma_g^2 / sigma^2: "
        "intercept 7; slope on x 0.93; not all >= 1; from a one-way ANOVA"
    ) in said


def test_the_anova_of_a_model_without_predictors_is_of_the_response(data):
    assert (
        "ANOVA by g (24 levels, median 20 rows) of the response, F = 7.41 on 23 and 456 df), so "
        "the centred form samples best"
    ) in prose("y ~ 1 + (1 | g)", data)


def test_a_nested_grouping_is_centred_on_its_parents_intercepts_only():
    import numpy as np
    import pandas as pd
    from test_hierarchical_centring import DATA

    pastes = pd.read_csv(DATA / "pastes.csv")  # batch:cask is centred; it nests in batch
    pastes["x"] = np.random.default_rng(1).normal(size=len(pastes))
    written = code("strength ~ 1 + (1 + x | batch) + (1 | batch:cask)", pastes)
    assert (
        "level_mean_batch_by_cask = intercept + u_batch[batch_[batch_by_cask_row_], 0]"
    ) in written
    written = code("strength ~ 1 + (0 + x | batch) + (1 | batch:cask)", pastes)
    assert "level_mean" not in written  # batch's slopes vary within a cask
    assert 'a_batch_by_cask = pm.Normal( "a_batch_by_cask", mu=intercept,' in written


# parse, _split_bars, _response, slug, lme4_formula, _validate_groups (the 2026-11-27 run) -----


@pytest.mark.parametrize(
    "formula, options, expected",
    [
        ("   ", {}, "the formula is empty; write it as 'y ~ x + (1 | group)'"),
        (
            "y x",
            {},
            "cannot read the formula 'y x': write it as lme4 does ('y ~ x + (1 | g)') or as a "
            "Stata command (mixed, melogit, mepoisson, menbreg, meglm y x || g:)",
        ),
        (
            "y ~ x",
            {"family": "nonsense"},
            "unknown family 'nonsense'; choose one of gaussian, student_t, bernoulli, binomial, "
            "poisson, negbinomial, gamma, lognormal, beta, zero_inflated_poisson, "
            "zero_inflated_negbinomial",
        ),
        (
            "mixed y x || g:, residuals(independent, by(c))",
            {"sigma": "~ c"},
            "the residual scale is given twice: by --sigma and by residuals()",
        ),
        (
            "y ~ x",
            {"sigma": "~ c", "family": "poisson"},
            "a residual scale model (--sigma) needs a family with a scale: gaussian, student_t "
            "or lognormal, not poisson",
        ),
        (
            "y ~ (1 | g) + (1 + x | g)",
            {},
            "'1' varies by g twice, in (1 | g) and in (1 + x | g); keep one",
        ),
    ],
)
def test_a_refused_formula_without_a_caret_says_exactly_what_is_wrong(formula, options, expected):
    assert refused(formula, **options) == expected


@pytest.mark.parametrize(
    "formula, first_line, fragment",
    [
        (
            "log(y) ~ x",
            "the response 'log(y)' must be one column name, or cbind(successes, failures) for "
            "binomial counts (transform it in data.py)",
            "log(y)",
        ),
        (
            "cbind(s, 2 * n) ~ x",
            "write 'cbind(s, 2 * n)' as cbind(s, f) or cbind(s, n - s)",
            "cbind(s, 2 * n)",
        ),
        ("y ~ x))", "a ')' without its '('", "x)"),
        ("y ~ (1 | g", "a '(' that is never closed", "(1 | g"),
    ],
)
def test_a_refused_formula_says_exactly_what_is_wrong_under_the_fragment(
    formula, first_line, fragment
):
    message = refused(formula)
    assert message.splitlines()[:2] == [first_line, f"  in: {formula}"]
    assert caret(message) == (formula.index(fragment), len(fragment))


def test_a_bar_right_after_the_parenthesis_is_a_group_term_with_no_terms():
    assert refused("y ~ x + (|g)").splitlines()[0] == "(|g) must read (terms | grouping column)"


@pytest.mark.parametrize("formula", ["y ~ (1 | g)| h", "y ~ x | g"])
def test_a_bar_just_after_a_group_term_is_outside_it(formula):
    message = refused(formula)
    assert message.splitlines()[0] == "a group term must be in parentheses, as in (1 + x | group)"
    assert caret(message) == (formula.rindex("|"), 1)


def test_lme4s_binomial_family_on_a_response_without_trials_is_bernoulli():
    assert parse("y ~ x", family="binomial").family == "bernoulli"


def test_the_trials_of_p_name_their_columns_whatever_their_case():
    assert parse("p(s, N + M) ~ x").trials == Derived("N + M", "N + M", ("N", "M"))


@pytest.mark.parametrize(
    "label, name",
    [
        ("np.log(x)", "log_x"),
        ("log(X)", "log_X"),
        ("I(x * 0.5)", "x_times_0p5"),
        ("I(X + 1)", "X_plus_1"),
    ],
)
def test_a_computed_columns_python_name(label, name):
    from mlm.formula import slug

    assert slug(label) == name


def test_lme4_text_of_a_model_with_only_an_intercept():
    assert lme4_formula(parse("y ~ 1")) == "y ~ 1"


def test_lme4_text_keeps_the_reference_level_the_formula_chose_without_the_data():
    spec = parse("mixed y ib2.a || g:")
    assert lme4_formula(spec) == 'y ~ relevel(factor(a), ref = "2") + (1 | g)'
    assert (
        lme4_formula(spec, references={"a": "b"}) == 'y ~ relevel(factor(a), ref = "b") + (1 | g)'
    )


def test_the_caret_of_a_stray_bar_is_on_the_right_hand_side_when_the_response_repeats_it():
    # p(s, n|g) passes as a response; the caret was under its '|', not the right-hand side's
    formula = "p(s, n|g) ~ n|g"
    message = refused(formula)
    assert message.splitlines()[0] == "a group term must be in parentheses, as in (1 + x | group)"
    assert caret(message) == (formula.rindex("|"), 1)


@pytest.mark.parametrize(
    ("values", "codes"),
    [
        ([1, 2, 3, 2, 1], (1.0, 2.0, 3.0)),  # nlme's BodyWeight diets
        ([0, 1, 2, 3, 4, 5], (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)),
        ([1, 2, 3, 4, 5, 6, float("nan")], (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)),  # NaN aside
        ([0, 1], None),  # a dummy: a slope in every tool
        ([1, 2], None),
        ([0, 1, 2, 3, 4, 5, 6], None),  # seven values: days, a quantity
        ([2, 3, 4], None),  # from 2
        ([-1, 0, 1], None),
        ([1, 2, 4], None),  # not consecutive
        ([1, 1.5, 2], None),
        ([8, 10, 12, 14], None),
    ],
)
def test_codes_of_tells_category_codes_from_quantities(values, codes):
    from mlm.codegen.columns import codes_of

    assert codes_of(values) == codes
