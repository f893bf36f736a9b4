"""`mlm check`'s diagnosis on real traces made sick on purpose: funnel, ridge, too few draws,
chains in different modes. Each finding must name its kind, the parameters and the line of
model.py or fit.py to change."""

from __future__ import annotations

from pathlib import Path

from mlm import Project
from mlm.check import advice_lines, explain
from mlm.diagnosis import diagnose

from conftest import render, run_mlm

EMPTY_GRAPHICS = "import matplotlib.pyplot as plt\n\n\ndef empty(idata):\n    return plt.figure()\n"

FIT = '''"""Sampling."""

import pymc as pm


def sample(model, project):
    """Posterior draws."""
    with model:
        idata = pm.sample(draws={draws}, tune={tune}, chains={chains}, random_seed=project.seed)
    return idata
'''

EIGHT_SCHOOLS = '''"""Eight schools."""

import pandas as pd


def load():
    """Rubin's (1981) eight schools: estimated effects and their standard errors."""
    return pd.DataFrame(
        {
            "school": list("ABCDEFGH"),
            "y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
            "s": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
        }
    )
'''

CENTRED_FUNNEL = '''"""Centred eight schools: a funnel."""

import pymc as pm


def build(data):
    """Effects centred on mu with scale tau."""
    with pm.Model(coords={"school": data["school"].tolist()}) as model:
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        theta = pm.Normal("theta", mu, tau, dims="school")
        pm.Normal("y", theta, data["s"].to_numpy(), observed=data["y"].to_numpy())
    return model
'''

WALL = '''"""A wall in the posterior: divergences at any step size."""

import pymc as pm
import pytensor.tensor as pt


def build(data):
    """The schools' common mean, with its log density dropping by 1e6 past 1."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 1)
        pm.Potential("wall", pt.switch(mu > 1, -1e6, 0))
        pm.Normal("y", mu, data["s"].to_numpy(), observed=data["y"].to_numpy())
    return model
'''

COMMON_MEAN = '''"""The schools' common mean: nothing to diverge on."""

import pymc as pm


def build(data):
    """One mean for all schools."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 20)
        pm.Normal("y", mu, data["s"].to_numpy(), observed=data["y"].to_numpy())
    return model
'''

GROUPS = '''"""Simulated groups with many rows each."""

import numpy as np
import pandas as pd


def load():
    """{groups} groups of {rows} rows; x near {x_mean}, far from 0."""
    rng = np.random.default_rng(7)
    group = np.repeat(np.arange({groups}), {rows})
    x = rng.normal({x_mean}, 1.0, group.size)
    u = rng.normal(0, 0.5, {groups})
    y = 1.0 + 0.5 * x + u[group] + rng.normal(0, 1.0, group.size)
    return pd.DataFrame({{"y": y, "x": x, "g": [f"g{{i}}" for i in group]}})
'''

RANDOM_INTERCEPT = '''"""A random intercept and a slope, non-centred, as `mlm new --formula` is."""

import pandas as pd
import pymc as pm


def build(data):
    """y on x with an intercept varying by g."""
    y = data["y"].to_numpy(dtype=float)
    x = data["x"].to_numpy(dtype=float)
    g_idx, g_levels = pd.factorize(data["g"], sort=True)
    with pm.Model(coords={"g": list(g_levels)}) as model:
        intercept = pm.Normal("Intercept", mu=y.mean(), sigma=5 * y.std())
        b_x = pm.Normal("b_x", mu=0, sigma=2.5 * y.std() / x.std())
        sigma_g = pm.HalfNormal("sigma_g", sigma=y.std())
        z_g = pm.Normal("z_g", mu=0, sigma=1, dims="g")
        u_g = pm.Deterministic("u_g", z_g * sigma_g, dims="g")
        sigma = pm.Exponential("sigma", lam=1 / y.std())
        mu = intercept + b_x * x + u_g[g_idx]
        pm.Normal("y", mu=mu, sigma=sigma, observed=y)
    return model
'''


def line_of(path: Path, text: str) -> int:
    """1-based number of the first line of `path` containing `text`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def fitted(tmp_path: Path, data: str, model: str, fit: str):
    root = render(tmp_path)
    (root / "data.py").write_text(data)
    (root / "model.py").write_text(model)
    (root / "fit.py").write_text(fit)
    (root / "graphics.py").write_text(EMPTY_GRAPHICS)
    for test in (root / "tests").glob("test_*.py"):
        test.unlink()
    project = Project(root)
    project.run("fit")
    rows = project.check()
    findings = diagnose(project.idata, rows, root / "model.py", root / "fit.py")
    return root, rows, findings


def failed(rows) -> set[str]:
    return {r.name for r in rows if not r.passed}


MODES_DATA = '''"""Twenty values near 4."""

import numpy as np
import pandas as pd


def load():
    """Draws around 4, to be explained by the square of a parameter."""
    return pd.DataFrame({"y": np.random.default_rng(3).normal(4.0, 0.5, 20)})
'''

MODES_MODEL = '''"""y's mean is the square of m: m = 2 and m = -2 explain the data equally."""

import pymc as pm


def build(data):
    """Two modes, far apart."""
    with pm.Model() as model:
        m = pm.Normal("m", 0, 3)
        pm.Normal("y", m**2, 0.5, observed=data["y"].to_numpy())
    return model
'''


def only(findings, kind: str):
    chosen = [f for f in findings if f.kind == kind]
    assert chosen, [f.message() for f in findings]
    return chosen[0]


def test_a_centred_funnel_is_told_to_non_centre_on_its_line(tmp_path: Path):
    root, rows, findings = fitted(
        tmp_path, EIGHT_SCHOOLS, CENTRED_FUNNEL, FIT.format(draws=500, tune=500, chains=2)
    )
    assert "divergences" in failed(rows)
    funnel = only(findings, "funnel")
    assert funnel.parameters == ("tau", "theta")
    assert (funnel.file, funnel.line) == ("model.py", line_of(root / "model.py", "theta = pm."))
    assert funnel.numbers["mean_rank"] < 0.35 and funnel.numbers["divergences"] >= 5
    message = funnel.message()
    assert "non-centre" in message and "target_accept" in message
    assert f"fit.py line {line_of(root / 'fit.py', 'pm.sample(')}" in message
    # the funnel explains every failure here; no advice to draw 20 times more
    assert [f.kind for f in findings] == ["funnel"]
    assert failed(rows) <= set(funnel.checks)
    # what Project.check and `mlm check` print: each failure's advice is the diagnosis,
    # and one line per distinct finding
    explained = explain(rows, Project(root).idata, root / "model.py", root / "fit.py")
    assert all(r.findings == (funnel,) for r in explained if not r.passed)
    assert next(r for r in explained if r.name == "divergences").advice == funnel.message()
    assert advice_lines(explained) == [("model", funnel.message())]


def test_an_uncentred_predictor_is_a_ridge_with_the_intercept(tmp_path: Path):
    root, rows, findings = fitted(
        tmp_path,
        GROUPS.format(groups=8, rows=50, x_mean=20),
        RANDOM_INTERCEPT,
        FIT.format(draws=500, tune=500, chains=2),
    )
    assert "ess_bulk" in failed(rows)
    ridge = only(findings, "ridge")
    assert set(ridge.parameters) == {"Intercept", "b_x"}
    assert ridge.numbers["correlation"] < -0.9
    # the fix goes where x is read from the data: centre it there
    assert (ridge.file, ridge.line) == ("model.py", line_of(root / "model.py", 'x = data["x"]'))
    assert "x = x - C after reading it" in ridge.message() and "low_rank" in ridge.message()
    assert "not .mean(): predictions for new rows" in ridge.message()
    assert not [f for f in findings if f.kind in ("too_few_draws", "slow_mixing")]
    # a fit.py that already adapts a low-rank mass matrix is not told to
    idata, fit = Project(root).idata, root / "fit.py"
    fit.write_text(
        fit.read_text().replace(
            "random_seed=project.seed",
            'random_seed=project.seed,\n            nuts={"adaptation": "low_rank"}',
        )
    )
    again = only(diagnose(idata, rows, root / "model.py", fit), "ridge")
    assert "already adapts a low-rank mass matrix" in again.message()
    assert "let nutpie adapt" not in again.message()


def test_informative_groups_make_a_ridge_of_intercept_and_group_mean(tmp_path: Path):
    root, rows, findings = fitted(
        tmp_path,
        GROUPS.format(groups=6, rows=200, x_mean=0),
        RANDOM_INTERCEPT,
        FIT.format(draws=500, tune=500, chains=2),
    )
    assert "ess_bulk" in failed(rows)
    ridge = only(findings, "ridge")
    # The pair is named; a group effect in the ridge may be named beside it (which one
    # depends on the draws).
    assert {"Intercept", "mean of u_g"} <= set(ridge.parameters)
    assert ridge.numbers["correlation"] < -0.9
    assert (ridge.file, ridge.line) == ("model.py", line_of(root / "model.py", "u_g = pm."))
    message = ridge.message()
    assert "centre the group intercepts on the intercept" in message
    assert f"fit.py line {line_of(root / 'fit.py', 'pm.sample(')}" in message


def test_a_healthy_model_with_30_draws_needs_more_draws(tmp_path: Path):
    root, rows, findings = fitted(
        tmp_path,
        GROUPS.format(groups=8, rows=10, x_mean=0),
        RANDOM_INTERCEPT,
        FIT.format(draws=30, tune=300, chains=2),
    )
    assert {"ess_bulk", "ess_tail"} & failed(rows)
    few = only(findings, "too_few_draws")
    assert (few.file, few.line) == ("fit.py", line_of(root / "fit.py", "pm.sample("))
    assert few.numbers["efficiency"] >= 0.1
    assert few.numbers["draws_per_chain_needed"] > 30
    assert "(now draws=30)" in few.message() and few.parameters
    assert not [f for f in findings if f.kind in ("ridge", "funnel")]


def test_chains_in_different_modes_are_not_told_to_run_longer(tmp_path: Path):
    root, rows, findings = fitted(
        tmp_path, MODES_DATA, MODES_MODEL, FIT.format(draws=300, tune=300, chains=4)
    )
    assert "r_hat" in failed(rows)
    modes = only(findings, "multimodal")
    assert modes.parameters == ("m",)
    assert (modes.file, modes.line) == ("model.py", line_of(root / "model.py", "m = pm."))
    assert {"r_hat", "ess_bulk"} <= set(modes.checks)
    assert not [f for f in findings if f.kind in ("too_few_draws", "slow_mixing")]
    # one mean per chain, then how far apart they lie, not read as a fifth mean
    means = ", ".join(f"{m:.3g}" for m in modes.numbers["chain_means"])
    apart = f"{modes.numbers['separation']:.1f}"
    assert f"chain means {means} lie up to {apart} within-chain SDs apart" in modes.evidence


CHOOSING_FIT = '''"""Sampling."""

import pymc as pm


def sample(model, project):
    """Posterior draws."""
    with model:
        free = sum(value.size for value in model.initial_point().values())
        adaptation = "low_rank" if free <= 300 else "diag"
        idata = pm.sample(random_seed=project.seed, nuts={"adaptation": adaptation})
    return idata
'''


def test_a_fit_that_chooses_the_mass_matrix_is_read_from_its_trace(tmp_path: Path):
    # The template's fit.py picks nutpie's low-rank or diagonal mass matrix by the model's
    # size; the advice must follow what the trace was sampled with.
    import json

    import xarray as xr

    from mlm.diagnosis import FitSource

    path = tmp_path / "fit.py"
    path.write_text(CHOOSING_FIT)
    for used, low_rank in (("low_rank", True), ("diag", False)):
        stats = xr.Dataset(attrs={"inference_library_settings": json.dumps({"adaptation": used})})
        fit = FitSource(path)
        assert fit.chooses == line_of(path, "adaptation = ")
        fit.read_trace({"sample_stats": stats})
        assert fit.low_rank is low_rank
    # the diagonal one was used because of the model's size: the advice does not offer
    # low rank (a new user's 584-parameter model took 16 times as long on it, worse mixed)
    assert fit.low_rank_call() is None
    # a fit.py that names low rank outright is taken at its word
    path.write_text(
        FIT.format(draws=500, tune=500, chains=2).replace(
            "random_seed=project.seed", 'random_seed=project.seed, nuts={"adaptation": "low_rank"}'
        )
    )
    fit = FitSource(path)
    fit.read_trace({"sample_stats": stats})
    assert fit.chooses is None and fit.low_rank


def template_fit(draws: int = 300) -> str:
    """The template's own fit.py, with fewer draws and tuning steps."""
    template = Path(__file__).resolve().parents[1] / "project_template"
    text = (template / "{{cookiecutter.project_slug}}" / "fit.py").read_text()
    assert "draws=2000," in text and "tune=1000," in text
    return text.replace("draws=2000,", f"draws={draws},").replace("tune=1000,", f"tune={draws},")


def sampled_at(idata) -> float:
    """The target_accept nutpie recorded for the trace."""
    import json

    settings = json.loads(idata["sample_stats"].attrs["inference_library_settings"])
    return settings["settings"]["adapt_options"]["step_size_settings"]["target_accept"]


def test_the_template_fit_samples_again_at_0_99_after_divergences(tmp_path: Path, capsys):
    # A wall diverges at 0.95: the template's fit.py says so and samples again at 0.99; the
    # trace kept is the second one, and mlm check's advice (divergences remain at 0.99,
    # as at any step size) moves on to 0.999 at the line that sets 0.99, not back to 0.99.
    root, rows, findings = fitted(tmp_path, EIGHT_SCHOOLS, WALL, template_fit())
    said = capsys.readouterr().out
    assert "divergent transitions at target_accept=0.95; sampling again at 0.99" in said
    idata = Project(root).idata
    assert sampled_at(idata) == 0.99
    assert idata["posterior"].sizes["draw"] == 300
    assert "divergences" in failed(rows)
    # mlm check and mlm summary say which try the trace is
    divergences = next(r for r in rows if r.name == "divergences")
    assert divergences.detail == "of 1200 draws at target_accept 0.99"
    summary = run_mlm("summary", cwd=root)
    assert "4 chains x 300 draws at target_accept 0.99, " in summary.stdout, summary.stderr
    again = line_of(root / "fit.py", "idata = draw(model, project, target_accept=0.99)")
    advice = " ".join(f.fix for f in findings)
    assert f"raise target_accept (now 0.99): target_accept=0.999 at fit.py line {again}" in advice
    assert "target_accept=0.99)" not in advice


def test_the_template_fit_samples_once_without_divergences(tmp_path: Path, capsys):
    root, rows, _ = fitted(tmp_path, EIGHT_SCHOOLS, COMMON_MEAN, template_fit())
    assert "sampling again" not in capsys.readouterr().out
    assert sampled_at(Project(root).idata) == 0.95
    assert "divergences" not in failed(rows)
    divergences = next(r for r in rows if r.name == "divergences")
    assert divergences.detail == "of 1200 draws at target_accept 0.95"
