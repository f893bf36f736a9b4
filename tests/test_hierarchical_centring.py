"""Hierarchical centring of group effects (mlm/codegen/groups.py, `centring`): a centred
group intercept is centred on what the rest of the model predicts at each of its levels -
the intercept, the effect of a grouping it nests in, population terms constant within its
levels - so that its effects' mean does not trade off against them (Gelfand, Sahu & Carlin
1995). lme4's Pastes and nlme's Machines failed `mlm check` without it (bulk ESS 250-301,
7 divergences); tests/test_validation.py fits them against their published estimates.

Here: which parts each group is centred on, and that the reparameterised model is the same
model - its log density equals the plain one's (u ~ Normal(0, sigma)) at every point mapped
by a = u + mean, so no mapping from a level to its parent can change the posterior."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlm.codegen import groups, model_source
from mlm.formula import parse

DATA = Path(__file__).resolve().parent / "validation" / "data"


def one_line(text: str) -> str:
    """model.py with every statement on one line (ruff breaks long ones)."""
    out, depth, current = [], 0, ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not depth:
            continue
        stripped = stripped.split("  # ")[0]
        current += (" " if current and not current.endswith(("(", "[")) else "") + stripped
        depth += sum(stripped.count(c) for c in "([") - sum(stripped.count(c) for c in ")]")
        if depth <= 0:
            current = re.sub(r" (?=[)\]])|,(?=[)\]])", "", current)
            name, _, value = current.partition(" = ")
            if value.startswith("(") and _closing(value) == len(value) - 1:
                current = f"{name} = {value[1:-1]}"  # ruff's parentheses around a long value
            out.append(current)
            current, depth = "", 0
    return "\n".join(out)


def _closing(text: str) -> int:
    """The position of the bracket that closes text's first one."""
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if depth == 0:
            return i
    return -1


def statement(text: str, start: str) -> str:
    """The one statement of model.py that starts with `start`."""
    found = [line for line in one_line(text).splitlines() if line.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def nested_chain(seed: int = 2) -> pd.DataFrame:
    """8 schools x 6 classes x 10 pupils, with large effects at both levels, so that both
    groupings are centred; age is constant within a class (a class is one year group)."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(8), 60)
    klass = np.repeat(np.arange(48), 10)
    age = np.repeat(rng.integers(10, 14, 48), 10).astype(float)
    y = (
        50
        + rng.normal(0, 8, 8)[school]
        + rng.normal(0, 5, 48)[klass]
        + 1.5 * age
        + rng.normal(0, 1, school.size)
    )
    return pd.DataFrame(
        {
            "y": y,
            "age": age,
            "school": [f"s{k}" for k in school],
            "class_": [f"c{k % 6}" for k in klass],
        }
    )


def trial(seed: int = 4) -> pd.DataFrame:
    """60 subjects x 8 visits; treatment is the subject's arm (constant within subject)."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(60), 8)
    arm = np.repeat(np.arange(60) % 2, 8)
    time = np.tile(np.arange(8.0), 60)
    y = (
        20
        + 3 * arm
        + rng.normal(0, 4, 60)[subject]
        + (0.5 + rng.normal(0, 0.3, 60)[subject]) * time
        + rng.normal(0, 1, subject.size)
    )
    return pd.DataFrame(
        {"y": y, "time": time, "arm": np.where(arm, "drug", "placebo"), "subject": subject}
    )


def test_a_nested_grouping_is_centred_on_its_parents_effect():
    # lme4's Pastes: batch (10 levels) is non-centred, batch:cask (30 casks of 2 rows) is
    # centred on the intercept and on its batch's effect
    text = model_source(parse("strength ~ 1 + (1 | batch/cask)"), pd.read_csv(DATA / "pastes.csv"))
    assert statement(text, "level_mean_batch_by_cask =") == (
        "level_mean_batch_by_cask = intercept + u_batch[batch_[batch_by_cask_row_]]"
    )
    assert "mu=level_mean_batch_by_cask," in statement(text, "a_batch_by_cask =")
    assert "a_batch_by_cask - level_mean_batch_by_cask" in statement(text, "u_batch_by_cask =")
    # a row of each cask, read from the data in build() and held in pm.Data
    assert statement(text, "batch_by_cask_row =") == (
        "batch_by_cask_row = np.unique(batch_by_cask_idx, return_index=True)[1]"
    )
    assert 'pm.Data("batch_by_cask_row", batch_by_cask_row, dims="batch_by_cask")' in text
    # batch itself is centred on nothing: its effects are z * sigma
    assert "z_batch * sigma_batch" in text and "level_mean_batch =" not in text
    # the comment says what it is centred on
    said = re.sub(r"\n\s*# ", " ", text)
    assert (
        "centred on the rest of the model at each level (the intercept and the effect of its batch)"
        in said
    )


def test_a_population_factor_constant_within_the_level_is_part_of_its_mean():
    # nlme's Machines: each Worker:Machine cell has one machine, so Machine's effect is
    # constant within it, as is the worker's effect
    data = pd.read_csv(DATA / "machines.csv")
    text = model_source(parse("score ~ Machine + (1 | Worker/Machine)"), data)
    assert statement(text, "level_mean_Worker_by_Machine =") == (
        "level_mean_Worker_by_Machine = intercept"
        " + pt.concatenate([pt.zeros(1), b_Machine])[Machine_[Worker_by_Machine_row_]]"
        " + u_Worker[Worker_[Worker_by_Machine_row_]]"
    )


def test_a_chain_of_centred_groupings_is_centred_all_the_way_down():
    data = nested_chain()
    text = model_source(parse("y ~ age + (1 | school/class_)"), data)
    # school (fewer levels) takes the intercept; school:class_ takes the intercept, age (a
    # class's year) and its school's effect: the likelihood sees only a_school_by_class_
    assert "mu=intercept_c," in statement(text, "a_school =")
    assert statement(text, "level_mean_school_by_class_ =") == (
        "level_mean_school_by_class_ = intercept_c"
        " + b_age * (age_[school_by_class__row_] - age_centre)"
        " + u_school[school_[school_by_class__row_]]"
    )
    # age varies within a school: not part of the school's mean
    assert "level_mean_school =" not in text


def test_crossed_groupings_never_share_a_part():
    # lme4's Penicillin: plate and sample are crossed and both centred; only the one with
    # fewer levels (sample, 6) is centred on the intercept
    text = model_source(
        parse("diameter ~ 1 + (1 | plate) + (1 | sample)"), pd.read_csv(DATA / "penicillin.csv")
    )
    assert "mu=intercept," in statement(text, "a_sample =")
    assert statement(text, "u_plate =").startswith('u_plate = pm.Normal("u_plate", mu=0,')
    assert "level_mean" not in text


def test_a_correlated_term_takes_a_mean_per_level():
    # the subject's arm is constant within subject: the intercepts' mean per subject holds it
    text = model_source(parse("y ~ time + arm + (1 + time | subject)"), trial())
    assert statement(text, "level_mean_subject =") == (
        "level_mean_subject = intercept_c"
        " + pt.concatenate([pt.zeros(1), b_arm])[arm_[subject_row_]]"
    )
    assert statement(text, "mean_subject =") == (
        "mean_subject = pt.concatenate("
        "[level_mean_subject[:, None], pt.zeros((level_mean_subject.shape[0], 1))], axis=1)"
    )
    assert "mu=mean_subject," in statement(text, "a_subject =")


def test_the_order_of_the_terms_does_not_matter():
    # the nested term written first is still written after the term it is centred on
    data = pd.read_csv(DATA / "pastes.csv")
    text = model_source(parse("strength ~ 1 + (1 | batch:cask) + (1 | batch)"), data)
    assert text.index("u_batch = pm.Deterministic") < text.index("level_mean_batch_by_cask =")
    # and the linear predictor keeps the formula's order
    assert re.search(r"u_batch_by_cask\[batch_by_cask_\]\s*\+ u_batch\[batch_\]", text)


def build(formula: str, data: pd.DataFrame):
    namespace: dict = {}
    exec(compile(model_source(parse(formula), data), "model.py", "exec"), namespace)
    return namespace["build"](data)


@pytest.mark.parametrize(
    ("formula", "data"),
    [
        ("score ~ Machine + (1 | Worker/Machine)", lambda: pd.read_csv(DATA / "machines.csv")),
        ("strength ~ 1 + (1 | batch/cask)", lambda: pd.read_csv(DATA / "pastes.csv")),
        ("y ~ age + (1 | school/class_)", nested_chain),
        ("y ~ time + arm + (1 + time | subject)", trial),
    ],
    ids=["machines", "pastes", "chain", "correlated"],
)
def test_the_centred_model_is_the_plain_model(formula, data, monkeypatch):
    """log p(a, rest) of the centred model equals log p(u, rest) of the plain one (every
    group u ~ Normal(0, sigma), or MvNormal(0, chol)) at u = a - mean: a shift whose
    Jacobian is 1, whatever the mean. A mean in a's prior other than the one u subtracts,
    or a linear predictor that counts a part twice, would break the equality. (Which
    parts the mean holds, and at which rows, is checked by the next test.)"""
    frame = data()
    centred = build(formula, frame)
    monkeypatch.setattr(groups, "ON_INTERCEPT", False)
    plain = build(formula, frame)
    monkeypatch.undo()
    shifted = [rv.name for rv in centred.free_RVs if rv.name.startswith("a_")]
    assert shifted and not any(rv.name.startswith("a_") for rv in plain.free_RVs)
    outputs = [centred[name.replace("a_", "u_", 1)] for name in shifted]
    effects = centred.compile_fn(
        centred.replace_rvs_by_values(outputs), inputs=centred.value_vars, on_unused_input="ignore"
    )
    logp_centred, logp_plain = centred.compile_logp(), plain.compile_logp()
    rng = np.random.default_rng(7)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in centred.initial_point().items()}
        same = {k: v for k, v in point.items() if not k.startswith("a_")}
        for name, value in zip(shifted, effects(point), strict=True):
            same[name.replace("a_", "u_", 1)] = value
        assert set(same) == set(plain.initial_point())
        np.testing.assert_allclose(logp_plain(same), logp_centred(point), rtol=1e-9)


def test_the_mean_of_each_level_is_read_at_its_own_rows():
    """level_mean (= a - u at any point) against the same sum computed here from the data's
    labels: each cask's batch, each cell's machine and worker. The rows are shuffled, so
    that a level's first row is not where the level's code says."""
    data = pd.read_csv(DATA / "machines.csv").sample(frac=1.0, random_state=3)
    data = data.reset_index(drop=True)
    model = build("score ~ Machine + (1 | Worker/Machine)", data)
    names = ["a_Worker_by_Machine", "u_Worker_by_Machine", "Intercept", "b_Machine", "u_Worker"]
    values = model.compile_fn(
        model.replace_rvs_by_values([model[n] for n in names]),
        inputs=model.value_vars,
        on_unused_input="ignore",
    )
    rng = np.random.default_rng(11)
    point = {k: v + rng.normal(0, 1, np.shape(v)) for k, v in model.initial_point().items()}
    a, u, intercept, b_machine, u_worker = values(point)
    cells = model.coords["Worker_by_Machine"]
    workers, machines = list(model.coords["Worker"]), ["A", *model.coords["Machine_effect"]]
    expected = [
        intercept
        + np.concatenate([[0.0], b_machine])[machines.index(cell.split(":")[1])]
        + u_worker[workers.index(cell.split(":")[0])]
        for cell in cells
    ]
    np.testing.assert_allclose(a - u, expected, rtol=1e-12)
