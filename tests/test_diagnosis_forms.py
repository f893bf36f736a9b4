"""`mlm check`'s diagnosis reads every form of group term the formula front end writes.

The generated model.py centres a term when its levels hold many rows (`pm.Normal` with the
SD, `pm.MvNormal` with the Cholesky factor for correlated effects, the group intercepts on
the intercept for one term) and non-centres it when few (`z * sigma`, `z @ chol.T`). The
diagnosis must find each as a group term with its SDs, and word its advice in that form.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlm.codegen import model_source
from mlm.diagnosis import ModelSource
from mlm.formula import parse

DATA = Path(__file__).parent / "validation" / "data"


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, keep_default_na=False, na_values=["", "NA"])


def source(tmp_path: Path, formula: str, csv: str) -> ModelSource:
    path = tmp_path / "model.py"
    path.write_text(model_source(parse(formula), read(csv)))
    return ModelSource(path)


def test_a_centred_correlated_term_is_an_mvnormal_group_term(tmp_path: Path):
    # sleepstudy: 10 rows per subject, so the correlated term is centred
    model = source(tmp_path, "Reaction ~ Days + (Days | Subject)", "sleepstudy.csv")
    text = model.path.read_text()
    # ... on the intercept: a ~ MvNormal((intercept, 0), chol), u = a - (intercept, 0)
    assert 'a_Subject = pm.MvNormal(\n            "a_Subject"' in text
    (term,) = model.group_terms()
    assert term.effect == "a_Subject" and term.centred
    assert term.sds == ["sigma_Subject"] and term.chol == "chol_Subject"
    assert term.line == model.line_of("a_Subject")
    advice = term.non_centred_form("mean", "sigma_Subject")
    assert "z_a_Subject @ chol_Subject.T" in advice and "* sigma_Subject" not in advice


def test_a_non_centred_correlated_term_names_its_cholesky_factor(tmp_path: Path):
    # radon: 5 rows per county (median), so the correlated term is non-centred
    model = source(tmp_path, "log_radon ~ floor + (1 + floor | county)", "radon.csv")
    (term,) = model.group_terms()
    assert term.effect == "u_county" and not term.centred
    assert term.z == "z_county" and term.chol == "chol_county"
    assert term.sds == ["sigma_county"]
    assert term.centred_form("sigma_county").startswith(
        'u_county = pm.MvNormal("u_county", mu=0, chol=chol_county'
    )


@pytest.mark.parametrize(
    ("formula", "csv", "effect", "sd"),
    [
        # 62 pupils per school: centred on the intercept (a_school ~ Normal(intercept, sd))
        ("normexam ~ standLRT + (1 | school)", "exam.csv", "a_school", "sigma_school"),
        # 5 homes per county: non-centred
        ("log_radon ~ floor + (1 | county)", "radon.csv", "u_county", "sigma_county"),
    ],
)
def test_intercept_terms_in_either_form(tmp_path, formula, csv, effect, sd):
    model = source(tmp_path, formula, csv)
    (term,) = model.group_terms()
    assert (term.effect, term.sds, term.chol) == (effect, [sd], None)
    assert f"* {sd}" in term.non_centred_form("mean", sd)


def test_the_advice_names_the_terms_real_dims_and_python_mean(tmp_path: Path):
    # Exam's schools are centred on the intercept: a_school ~ Normal(intercept_c, sigma).
    # Non-centring advice must be code that runs where it is pasted: the term's own dims
    # (not `dims=...`) and its mean as model.py's Python names it (not the PyMC name).
    model = source(tmp_path, "normexam ~ standLRT + (1 | school)", "exam.csv")
    (term,) = model.group_terms()
    var = model.variables[term.effect]
    assert var.dims_text == '"school"' and var.mu_text == "intercept"
    advice = term.non_centred_form(var.mu_text, "sigma_school")
    assert advice == (
        'z_a_school = pm.Normal("z_a_school", 0, 1, dims="school") and a_school = '
        'pm.Deterministic("a_school", intercept + z_a_school * sigma_school, dims="school")'
    )
    assert "dims=..." not in term.centred_form("sigma_school")


def test_a_correlated_terms_advice_names_its_two_dims(tmp_path: Path):
    model = source(tmp_path, "log_radon ~ floor + (1 + floor | county)", "radon.csv")
    (term,) = model.group_terms()
    assert 'dims=("county", "county_effect")' in term.centred_form("sigma_county")


@pytest.mark.slow
def test_chains_stuck_at_their_start_are_named_with_the_fix_that_frees_them(
    tmp_path: Path, monkeypatch
):
    # A Poisson GLMM on a predictor measured in hundreds (grouseticks' HEIGHT, ~35 m SD):
    # the slope's prior SD is ~0.07, and nutpie's start jitters it by up to +-1, where
    # exp() of the linear predictor is astronomically large: such chains never move.
    # mlm writes such a slope on the unit scale (z_b_x, below); a model written by hand
    # samples b_x itself, as mlm's did before (UNIT_SCALE 0).
    import numpy as np
    import pymc as pm

    from mlm.check import measure
    from mlm.codegen import body as codegen_body
    from mlm.diagnosis import diagnose

    monkeypatch.setattr(codegen_body, "UNIT_SCALE", 0.0)

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(20), 20)
    x = rng.normal(500, 35, g.size)
    y = rng.poisson(np.exp(0.5 - 0.02 * (x - 500) + rng.normal(0, 0.3, 20)[g]))
    data = pd.DataFrame({"y": y, "x": x.round(1), "g": g})
    path = tmp_path / "model.py"
    path.write_text(model_source(parse("y ~ x + (1 | g)", family="poisson"), data))
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    model = namespace["build"](data)

    def sample(**options):
        with model:
            return pm.sample(
                draws=200, tune=200, chains=4, random_seed=1, progressbar=False, **options
            )

    idata = sample()
    b = idata["posterior"]["b_x"].std("draw").to_numpy()
    assert (b < 1e-12).sum() >= 1, b  # the failure this diagnosis is for
    (finding,) = diagnose(idata, ["r_hat", "ess_bulk", "divergences"], path)
    assert finding.kind == "stuck" and finding.parameters[0] == "b_x", finding.message()
    assert "never moved" in finding.evidence and "scale(x)" in finding.fix
    assert finding.file == "model.py" and "x" in path.read_text().splitlines()[finding.line - 1]
    # The fix it names frees the chains: x on a unit scale, the same seed.
    data["x"] = (data["x"] - data["x"].mean()) / data["x"].std()
    path.write_text(model_source(parse("y ~ x + (1 | g)", family="poisson"), data))
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    model = namespace["build"](data)
    assert (sample()["posterior"]["b_x"].std("draw").to_numpy() > 1e-6).all()
    # And so does mlm's default on the data as they were: b_x sampled as z_b_x ~ N(0, 1),
    # b_x = z_b_x * 2.5 / x_sd (the same prior), the same seed.
    monkeypatch.undo()
    data["x"] = x.round(1)
    path.write_text(model_source(parse("y ~ x + (1 | g)", family="poisson"), data))
    assert "z_b_x = pm.Normal(" in path.read_text()
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    model = namespace["build"](data)
    idata = sample()
    assert (idata["posterior"]["b_x"].std("draw").to_numpy() > 1e-6).all()
    # (200 draws are too few for mlm check's 1.01: stuck chains gave r_hat > 2)
    numbers = measure(idata)
    assert numbers["max_r_hat"] < 1.2 and numbers["divergences"] == 0, numbers
    assert all(f.kind != "stuck" for f in diagnose(idata, ["r_hat"], path))


def partly_centred(tmp_path: Path) -> ModelSource:
    # Orthodont: each child's intercept informed, its age slope not: partly centred
    return source(tmp_path, "distance ~ age + (age | Subject)", "orthodont.csv")


def test_a_partly_centred_term_is_one_group_term_with_its_intercepts(tmp_path: Path):
    model = partly_centred(tmp_path)
    (term,) = model.group_terms()
    assert (term.effect, term.partial, term.chol) == ("u_Subject", "a_Subject", "chol_Subject")
    assert term.centred and term.sds == ["chol_Subject", "sigma_Subject"]
    assert term.line == model.line_of("a_Subject")
    assert term.centred_words("sigma_Subject") == (
        "u_Subject's intercepts (a_Subject) are centred, with SDs from sigma_Subject"
    )


def test_a_partly_centred_terms_advice_is_code_that_builds(tmp_path: Path):
    """The advice to non-centre the term, pasted in place of the partly centred lines, gives
    a model that builds (it once named a_Subject's dims with the 2 x 2 factor's scale)."""
    model = partly_centred(tmp_path)
    (term,) = model.group_terms()
    advice = term.non_centred_form("intercept_c", "sigma_Subject")
    code, _, where = advice.partition(", in place of ")
    assert where == "the partly centred lines from the comment above a_Subject to u_Subject"
    z, _, u = code.partition(" and ")
    assert z == 'z_u_Subject = pm.Normal("z_u_Subject", 0, 1, dims=("Subject", "Subject_effect"))'
    text = model.path.read_text()
    start = text.index("        # The effects at age = 11.0")
    end = text.index('dims=("Subject", "Subject_effect"),\n        )\n', start)
    end = text.index("\n", end + 40) + 1
    edited = text[:start] + f"        {z}\n        {u}\n" + text[end:]
    namespace: dict = {}
    exec(compile(edited, "model.py", "exec"), namespace)
    built = namespace["build"](read("orthodont.csv"))
    free = {rv.name for rv in built.free_RVs}
    assert "z_u_Subject" in free and "a_Subject" not in free and "z_Subject" not in free
    assert built["u_Subject"].type.ndim == 2


def funnel_draws(at: str):
    """200 draws of sigma_Subject whose 5 divergent ones sit at the smallest values of the
    Intercept's or the age slope's SD."""
    import numpy as np
    import xarray as xr

    rng = np.random.default_rng(1)
    sd = rng.lognormal(0, 0.5, (1, 200, 2))
    column = 0 if at == "Intercept" else 1
    diverging = np.zeros((1, 200), bool)
    diverging[0, np.argsort(sd[0, :, column])[:5]] = True
    posterior = xr.Dataset(
        {"sigma_Subject": (("chain", "draw", "Subject_effect"), sd)},
        coords={"Subject_effect": ["Intercept", "age"]},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})


@pytest.mark.parametrize("at", ["Intercept", "age"])
def test_a_funnel_in_a_partly_centred_term_gets_the_fix_for_its_side(tmp_path: Path, at):
    from mlm.diagnosis import Draws, FitSource, _funnel

    model = partly_centred(tmp_path)
    fit = FitSource(None)
    finding = _funnel(Draws(funnel_draws(at)), model, fit)
    assert finding.parameters == (f"sigma_Subject[{at}]", "u_Subject")
    if at == "Intercept":  # the centred intercepts: non-centre the term
        assert finding.fix.startswith(
            "reparameterize: u_Subject's intercepts (a_Subject) are centred, with SDs from "
            "sigma_Subject"
        )
        assert "z_u_Subject @ chol_Subject.T" in finding.fix
    else:  # the slopes are non-centred already: smaller steps
        assert finding.fix.startswith("u_Subject's slopes are non-centred already")
        assert "raise target_accept" in finding.fix and "z_u_Subject" not in finding.fix


def test_a_ridge_behind_r_hat_alone_is_shown_with_its_fix():
    """r_hat fails while the ESS passes: the ridge that slows the chains belongs to no
    failed ESS row, so r_hat's finding must carry the ridge's fix itself (a new user's
    Assay fit was told "the ridge's fix cures the cause" with no ridge fix anywhere)."""
    import numpy as np
    import xarray as xr

    from mlm.diagnosis import diagnose

    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 0.05, (4, 1000)), axis=1) + rng.normal(0, 0.3, (4, 1))
    posterior = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), walk + rng.normal(0, 0.02, (4, 1000))),
            "u_g": (
                ("chain", "draw", "g"),
                np.stack([rng.normal(0, 1, (4, 1000)), -walk + rng.normal(0, 0.02, (4, 1000))], -1),
            ),
            "sigma": (("chain", "draw"), np.exp(rng.normal(0, 0.2, (4, 1000)))),
        },
        coords={"g": ["a", "b"]},
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((4, 1000), bool))})
    idata = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    findings = diagnose(idata, ["r_hat"], None, None, {"ess_bulk": 1, "ess_tail": 1})
    shown = [f for f in findings if "r_hat" in f.checks]  # what `mlm check` prints
    assert [f.kind for f in shown] == ["too_short"]
    assert "the ridge between u_g[b] and Intercept slows them" in shown[0].evidence
    # four chain means, then how far apart they lie (a new user read that as a fifth mean)
    means = ", ".join(f"{m:.3g}" for m in shown[0].numbers["chain_means"])
    apart = f"{shown[0].numbers['separation']:.1f}"
    assert f"chain means {means} (at most {apart} within-chain SDs apart), and" in (
        shown[0].evidence
    )
    assert "; the cause is the ridge: the two are nearly redundant" in shown[0].fix
    assert "reparameterize so one of them is their sum or difference" in shown[0].fix


@pytest.mark.parametrize(
    "now, advised", [(None, "0.95"), (0.9, "0.95"), (0.95, "0.99"), (0.99, "0.999")]
)
def test_target_accept_is_never_advised_at_the_value_it_has(now, advised):
    from mlm.diagnosis import FitSource, _target_accept

    fit = FitSource(None)
    fit.settings = {} if now is None else {"target_accept": now}
    advice = _target_accept(fit)
    assert f"target_accept={advised})" in advice
    assert ("(now " in advice) == (now is not None)
