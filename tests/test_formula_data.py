"""Data and families as lme4 and Stata users bring them (issue 19): the CSV read as R's
read.csv reads it, a two-level text response for bernoulli, aggregated binomial counts
(lme4's cbpp, checked against its published glmer fit), chosen reference levels, and the
negative binomial family."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_formula import build, simulate

from mlm.codegen import formatted, model_source
from mlm.errors import MlmError
from mlm.formula import Derived, lme4_formula, parse

from conftest import model_body, run_mlm

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
CBPP = DATA / "cbpp.csv"
CBPP_LME4 = "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"
CBPP_STATA = "melogit incidence i.period || herd:, binomial(size)"
# glmer's published fit (Laplace): lme4's documentation of cbpp.
CBPP_PUBLISHED = {
    "Intercept": -1.3983,
    "b_period": [-0.9919, -1.1282, -1.5797],
    "sigma_herd": 0.642,
}


def read_as_r(path: Path) -> pd.DataFrame:
    """As the generated data.py reads a CSV."""
    return pd.read_csv(path, keep_default_na=False, na_values=["", "NA"])


def check_golden(name: str, source: str) -> None:
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("MLM_UPDATE_GOLDEN"):
        golden.write_text(source)
    assert source == formatted(golden.read_text()), f"regenerate with MLM_UPDATE_GOLDEN=1: {name}"


# the CSV as R reads it --------------------------------------------------------------------


def test_words_stay_text_and_only_empty_cells_and_na_are_missing(tmp_path):
    rng = np.random.default_rng(4)
    words = ["null", "none", "N/A", "nan", "NULL", "apple", "table", "chair"]
    n = 160
    frame = pd.DataFrame(
        {
            "rt": rng.normal(600, 50, n).round(1),
            "subject": np.repeat([f"s{i}" for i in range(10)], n // 10),
            "item": np.tile(words, n // len(words)),
        }
    )
    csv = tmp_path / "crossed.csv"
    frame.to_csv(csv, index=False)
    formula = "rt ~ 1 + (1 | subject) + (1 | item)"
    done = run_mlm("new", "crossed", "--formula", formula, "--data", str(csv), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "crossed"
    data_py = (root / "data.py").read_text()
    assert 'keep_default_na=False, na_values=["", "NA"]' in data_py
    from mlm import Project

    project = Project(root)
    assert sorted(project.model.coords["item"]) == sorted(words)
    # An empty cell and NA are missing, as in R: refused by name.
    text = csv.read_text().splitlines()
    text[1] = text[1].rsplit(",", 1)[0] + ",NA"
    text[2] = text[2].rsplit(",", 1)[0] + ","
    (root / "data" / "crossed.csv").write_text("\n".join(text) + "\n")
    done = run_mlm("run", "model", cwd=root)
    assert done.returncode == 1 and "column 'item' is empty at rows [0, 1]" in done.stderr


# a two-level response for bernoulli ------------------------------------------------------


def yes_no(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(answer=np.where(frame["yb"] == 1, "Y", "N"))


@pytest.mark.parametrize(
    ("values", "noted"),
    [
        ([1, 2, 3], True),  # nlme's BodyWeight Diet: codes a new user fitted as a slope
        ([0, 1, 2, 3, 4, 5], True),
        ([0, 1], False),  # a 0/1 dummy is a slope in every tool
        ([8, 10, 12, 14], False),  # Orthodont's ages: a quantity
        ([0, 1, 2, 3, 4, 5, 6], False),  # sleepstudy's days
        ([1, 2, 4], False),  # not consecutive
    ],
)
def test_a_numeric_predictor_that_looks_like_codes_gets_a_note(tmp_path, values, noted):
    rows = 24
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "y": rng.normal(size=rows).round(3),
            "diet": [values[i % len(values)] for i in range(rows)],
            "g": [f"g{i % 6}" for i in range(rows)],
        }
    )
    frame.to_csv(tmp_path / "codes.csv", index=False)
    done = run_mlm(
        "new",
        "p",
        "--formula",
        "y ~ diet + (1 | g)",
        "--data",
        "codes.csv",
        "--no-git",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    shown = ", ".join(map(str, values))
    note = (
        f"note: diet is fitted as a number, one slope (its values: {shown}); if they code "
        "categories, write factor(diet) (Stata: i.diet)"
    )
    assert (note in " ".join(done.stderr.split())) is noted, done.stderr
    # and model.py says it beside the column, where it stays after the note scrolled by
    model = (tmp_path / "p" / "model.py").read_text()
    said = " ".join(line.strip(" #") for line in model.splitlines() if line.strip().startswith("#"))
    beside = (
        f"diet is fitted as a number, one slope (its values: {shown}); if they code "
        "categories, write factor(diet) in the formula."
    )
    assert (beside in said) is noted


def test_a_yes_no_response_is_bernoulli_with_the_second_level_as_success(tmp_path):
    frame = yes_no(simulate())
    csv = tmp_path / "answers.csv"
    frame.to_csv(csv, index=False)
    formula, family = "answer ~ x + (1 | g)", "bernoulli"
    done = run_mlm(
        "new", "yn", "--formula", formula, "--family", family, "--data", str(csv), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "yn" / "model.py").read_text()
    flat = " ".join(source.split())
    assert "the outcome is 1 when answer is 'Y' (success) and 0 when it is 'N'" in flat
    assert 'success, failure = "Y", "N"' in source
    text, coded = (
        build(source, frame),
        build(model_source(parse("yb ~ x + (1 | g)", family=family), frame), frame),
    )
    np.testing.assert_array_equal(text["answer_obs"].get_value(), frame["yb"])
    # The same model as on the 0/1 column: the same log density at any point.
    point = text.initial_point()
    assert text.compile_logp()(point) == pytest.approx(coded.compile_logp()(point))
    # Changing the success level in model.py flips the outcome.
    flipped = source.replace('failure = "Y", "N"', 'failure = "N", "Y"')
    np.testing.assert_array_equal(build(flipped, frame)["answer_obs"].get_value(), 1 - frame["yb"])
    # A value that is neither level is refused when build() reads the data.
    odd = frame.assign(answer=frame["answer"].where(frame.index != 5, "maybe"))
    with pytest.raises(ValueError, match=r"column 'answer' is neither 'Y' nor 'N' at rows \[5\]"):
        build(source, odd)


def test_boolean_and_categorical_responses(data=None):
    frame = simulate()
    flags = frame.assign(flag=frame["yb"] == 1)
    model = build(model_source(parse("flag ~ x + (1 | g)", family="bernoulli"), flags), flags)
    np.testing.assert_array_equal(model["flag_obs"].get_value(), frame["yb"])  # True is 1
    ordered = frame.assign(
        answer=pd.Categorical(np.where(frame["yb"] == 1, "yes", "no"), categories=["yes", "no"])
    )
    source = model_source(parse("answer ~ x", family="bernoulli"), ordered)
    assert 'success, failure = "no", "yes"' in source  # a Categorical's order: 'yes' fails
    three = frame.assign(answer=frame["a"])
    with pytest.raises(MlmError, match="two-level response; 'answer' has 3 levels"):
        model_source(parse("answer ~ x", family="bernoulli"), three)
    with pytest.raises(MlmError, match="must be numeric"):
        model_source(parse("answer ~ x"), yes_no(frame))


# aggregated binomial ----------------------------------------------------------------------


def test_cbind_and_stata_binomial_read_as_one_model():
    lme4, stata = parse(CBPP_LME4), parse(CBPP_STATA)
    assert lme4.family == stata.family == "binomial"
    assert lme4.trials == stata.trials == Derived("size", "size", ("size",))
    assert lme4.response == stata.response == "incidence"
    frame = read_as_r(CBPP)
    assert model_body(model_source(lme4, frame)) == model_body(model_source(stata, frame))
    assert lme4_formula(stata, {"period"}) == CBPP_LME4
    # cbind(s, f) sums its two columns; --family binomial or bernoulli both fit it.
    failures = parse("cbind(s, f) ~ x", family="bernoulli")
    assert failures.family == "binomial" and failures.trials == Derived(
        "s + f", "s + f", ("s", "f")
    )
    with pytest.raises(MlmError, match="contradicts cbind"):
        parse("cbind(s, f) ~ x", family="poisson")


def test_cbpp_model_matches_its_golden_file():
    check_golden("cbpp_binomial", model_source(parse(CBPP_LME4), read_as_r(CBPP)))


def test_binomial_trials_are_checked(tmp_path):
    frame = read_as_r(CBPP)
    bad = frame.assign(size=frame["size"].where(frame.index != 3, 0))
    with pytest.raises(MlmError, match=r"trials size must be whole numbers >= 1 and >= incidence"):
        model_source(parse(CBPP_LME4), bad)
    sums = frame.assign(f=frame["size"] - frame["incidence"])
    source = model_source(parse("cbind(incidence, f) ~ factor(period) + (1 | herd)"), sums)
    np.testing.assert_array_equal(build(source, sums)["trials"].get_value(), frame["size"])


@pytest.mark.slow
def test_cbpp_through_the_cli_matches_glmers_published_fit(tmp_path):
    """Every published fixed effect within 0.5 posterior SD; the herd SD within 0.75 (the
    posterior mean of an SD from 15 herds lies above its ML mode)."""
    done = run_mlm("new", "cbpp", "--formula", CBPP_STATA, "--data", str(CBPP), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "cbpp"
    (root / "fit.py").write_text(
        "import pymc as pm\n\n\ndef sample(model, project):\n    with model:\n"
        "        idata = pm.sample(draws=1000, tune=1000, chains=2, random_seed=1)\n"
        "        pm.compute_log_likelihood(idata)\n"
        "        pm.sample_posterior_predictive(idata, extend_inferencedata=True, random_seed=1)\n"
        "    return idata\n"
    )
    done = run_mlm("run", cwd=root)
    assert done.returncode == 0, done.stderr
    from mlm import Project

    posterior = Project(root).idata["posterior"]
    for name, published in CBPP_PUBLISHED.items():
        draws = posterior[name].to_numpy().reshape(-1, np.size(published))
        z = np.abs(draws.mean(axis=0) - np.asarray(published)) / draws.std(axis=0)
        assert (z < (0.75 if name == "sigma_herd" else 0.5)).all(), (name, draws.mean(0), z)
    assert int(Project(root).idata["sample_stats"]["diverging"].sum()) == 0


# reference levels -------------------------------------------------------------------------


def test_a_chosen_reference_level_through_the_cli(tmp_path):
    frame = simulate().assign(sector=lambda f: np.where(f["b"] == "hi", "Public", "Catholic"))
    csv = tmp_path / "schools.csv"
    frame.to_csv(csv, index=False)
    formula = 'y ~ x + C(sector, Treatment("Public")) + (1 | g)'
    done = run_mlm("new", "hsb", "--formula", formula, "--data", str(csv), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    source = (tmp_path / "hsb" / "model.py").read_text()
    assert 'relevel(factor(sector), ref = "Public")' in source
    assert "sector -> 'Public' (chosen by C(sector, Treatment(\"Public\")))" in " ".join(
        source.split()
    )
    model = build(source, read_as_r(csv))
    assert list(model.coords["sector_effect"]) == ["Catholic"]  # Public is the reference
    stata = run_mlm(
        "new",
        "hsb2",
        "--formula",
        "mixed y x ib(last).sector || g:",
        "--data",
        str(csv),
        cwd=tmp_path,
    )
    assert stata.returncode == 0, stata.stderr
    assert 'relevel(factor(sector), ref = "Public")' in (tmp_path / "hsb2" / "model.py").read_text()


# negative binomial --------------------------------------------------------------------------


def overdispersed(seed: int = 9) -> pd.DataFrame:
    frame = simulate(seed)
    rng = np.random.default_rng(seed)
    mu = np.exp(1.0 + 0.5 * frame["x"] + rng.normal(0, 0.5, 24)[frame["g"]])
    theta = 2.0
    frame["yn"] = rng.negative_binomial(theta, theta / (theta + mu))
    return frame


def test_negative_binomial_as_lme4_and_stata_write_it():
    assert parse("menbreg yn x || g:") == parse("yn ~ x + (1 | g)", family="negbinomial")
    frame = overdispersed()
    source = model_source(parse("menbreg yn x || g:"), frame)
    assert 'theta = pm.Gamma("theta", alpha=0.01, beta=0.01)' in source
    assert "pm.NegativeBinomial(" in source and "alpha=theta" in source
    check_golden("negbinomial", source)
    with pytest.raises(MlmError, match="needs counts"):
        model_source(parse("y ~ x", family="negbinomial"), frame)


@pytest.mark.slow
def test_negative_binomial_agrees_with_bambi():
    bmb = pytest.importorskip("bambi")
    import pymc as pm
    from test_formula import assert_agree

    frame = overdispersed()
    with build(model_source(parse("yn ~ x + (1 | g)", family="negbinomial"), frame), frame):
        ours = pm.sample(draws=600, tune=600, chains=2, random_seed=3, progressbar=False)
    reference = bmb.Model("yn ~ x + (1 | g)", frame, family="negativebinomial")
    theirs = reference.fit(
        draws=600, tune=600, chains=2, random_seed=4, inference_method="nutpie", progressbar=False
    )
    pairs = {"Intercept": "Intercept", "b_x": "x", "sigma_g": "1|g_sigma", "theta": "alpha"}
    assert_agree(ours, theirs, pairs, slack=0.2)


def test_a_formula_for_another_variant_keeps_the_projects_family(tmp_path):
    # As lme4's update(): a Poisson project's next formula is Poisson unless --family says.
    csv = tmp_path / "counts.csv"
    simulate().to_csv(csv, index=False)
    made = run_mlm(
        "new", "ticks", "--formula", "yc ~ x + (1 | g)", "--family", "poisson", "--data", str(csv),
        cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    root = tmp_path / "ticks"
    done = run_mlm("generate", "model", "plain", "--formula", "yc ~ (1 | g)", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "note: family poisson, as model.py's (written by mlm); --family chooses" in done.stderr
    assert "pm.Poisson(" in (root / "models" / "plain.py").read_text()
    chosen = run_mlm(
        "generate", "model", "normal", "--formula", "yc ~ (1 | g)", "--family", "gaussian",
        cwd=root,
    )  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    assert "family poisson" not in chosen.stderr
    assert 'pm.Normal("yc"' in (root / "models" / "normal.py").read_text()
