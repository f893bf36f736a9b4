"""Model variants, the LOO comparison, the diagnostics gate and the HTML report."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlm import Project

from conftest import REPO, run_mlm, status_rows

EXAMPLE = REPO / "example_project"


def ran(results) -> list[tuple[str | None, str]]:
    return [(r.variant, r.stage) for r in results if r.ran]


def test_each_variant_is_fitted_drawn_and_listed(variants_dir: Path):
    project = Project(variants_dir)
    assert project.variants() == ["model", "wide"]
    rows = project.status()
    assert all(r.fresh for r in rows)
    assert {(r.variant, r.stage) for r in rows} >= {
        ("model", "fit"),
        ("wide", "fit"),
        (None, "compare"),
    }
    for variant in ("model", "wide"):
        assert (variants_dir / "figures" / variant / "coefficients.png").is_file()
    assert (variants_dir / "figures" / "compare.png").is_file()
    shown = run_mlm("status", cwd=variants_dir)
    assert shown.returncode == 0, shown.stderr
    assert status_rows(shown.stdout) == {(r.variant or "", r.stage): r.state for r in rows}
    assert status_rows(shown.stdout)[("wide", "fit")] == "fresh"
    assert status_rows(shown.stdout)[("", "compare")] == "fresh"


def test_editing_one_variant_leaves_the_other_fresh(variants_dir: Path):
    wide = variants_dir / "models" / "wide.py"
    wide.write_text(wide.read_text().replace("sigma=50)", "sigma=40)"))
    project = Project(variants_dir)
    states = {(r.variant, r.stage): (r.state, r.reason) for r in project.status()}
    assert states[("wide", "fit")] == ("stale", "models/wide.py changed")
    assert states[("model", "fit")][0] == "fresh"
    assert states[(None, "compare")] == ("stale", "wide trace changed")
    done = ran(project.run())
    assert ("wide", "fit") in done and ("model", "fit") not in done
    assert (None, "compare") in done
    assert not [s for v, s in done if v == "model"]


def test_run_fit_for_one_model_only(variants_dir: Path):
    (variants_dir / "fit.py").write_text(
        (variants_dir / "fit.py").read_text().replace("draws=200", "draws=150")
    )
    done = ran(Project(variants_dir).run("fit", models=["wide"]))
    assert done == [("wide", "fit")]
    cli = run_mlm("run", "fit", "--model", "nope", cwd=variants_dir)
    assert cli.returncode == 1 and "no model variant named nope" in cli.stderr


def test_summary_says_which_variant_it_shows(variants_dir: Path):
    first = run_mlm("summary", cwd=variants_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == (
        "variant model (model.py); the others: wide (--model NAME)"
    )
    wide = run_mlm("summary", "--model", "wide", cwd=variants_dir)
    assert wide.stdout.splitlines()[0] == (
        "variant wide (models/wide.py); the others: model (--model NAME)"
    )
    # the two tables are the two fits
    assert first.stdout.splitlines()[1:] != wide.stdout.splitlines()[1:]


def test_generate_model_copies_a_variant_and_never_overwrites(variants_dir: Path):
    done = run_mlm("generate", "model", "narrow", "--from", "wide", cwd=variants_dir)
    assert done.returncode == 0, done.stderr
    assert (variants_dir / "models" / "narrow.py").read_text() == (
        variants_dir / "models" / "wide.py"
    ).read_text()
    again = run_mlm("generate", "model", "narrow", cwd=variants_dir)
    assert again.returncode == 1 and "exists" in again.stderr
    bad = run_mlm("generate", "model", "no-dash", cwd=variants_dir)
    assert bad.returncode == 1 and "cannot name a model variant" in bad.stderr


def test_compare_prints_a_loo_table(variants_dir: Path):
    done = run_mlm("run", "compare", cwd=variants_dir)
    assert done.returncode == 0, done.stderr
    for text in ("PSIS-LOO comparison", "elpd", "elpd_diff", "weight", "p_loo", "wide"):
        assert text in done.stdout


def test_compare_names_observations_with_high_pareto_k(variants_dir: Path):
    csv = variants_dir / "data" / "scores.csv"
    lines = csv.read_text().splitlines()
    fields = lines[8].split(",")  # pupil 8
    fields[-1] = "400.0"  # an absurd score: a point LOO cannot leave out safely
    lines[8] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    project = Project(variants_dir)
    project.run("compare")
    warnings = project.comparison()["warnings"]
    assert warnings, "no Pareto k warning for an extreme outlier"
    assert all("7" in w["observations"] for w in warnings)  # obs index 7 = pupil 8
    assert "Pareto k > 0.7" in warnings[0]["message"]


def test_compare_prefers_a_residual_sd_per_arm_when_the_arms_differ(tmp_path: Path):
    root = tmp_path / "trial"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlm", "figures", "*.html"))
    spec = importlib.util.spec_from_file_location("trial_data", root / "data.py")
    data_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data_py)
    data_py.simulate(np.random.default_rng(99), sigma_e_treated=0.6, sigma_e_control=1.2).to_csv(
        root / "data" / "partially_clustered.csv", index=False
    )
    (root / "fit.py").write_text((root / "fit.py").read_text().replace("draws=2000", "draws=500"))
    project = Project(root)
    project.run("compare")
    record = project.comparison()
    assert record["order"] == ["model", "shared_sigma"]
    table = record["table"]
    assert table["model"]["elpd"] > table["shared_sigma"]["elpd"]


BAD_MODEL = '''import pymc as pm


def build(data):
    """Centered group effects with a wide scale prior: a funnel."""
    school_idx, schools = data["school"].factorize(sort=True)
    with pm.Model(coords={"school": list(schools)}) as model:
        mu = pm.Normal("mu", 0, 100)
        tau = pm.HalfCauchy("tau", 10)
        effect = pm.Normal("effect", mu, tau, dims="school")
        pm.Normal("score", effect[school_idx], 100, observed=data["score"].to_numpy())
    return model
'''

BAD_FIT = """import pymc as pm


def sample(model, project):
    with model:
        return pm.sample(draws=100, tune=20, chains=2, random_seed=project.seed)
"""


def test_check_fails_on_a_badly_parameterized_model_with_advice(project_dir: Path):
    (project_dir / "model.py").write_text(BAD_MODEL)
    (project_dir / "fit.py").write_text(BAD_FIT)
    (project_dir / "graphics.py").write_text(
        "import matplotlib.pyplot as plt\n\n\ndef empty(idata):\n    return plt.figure()\n"
    )
    assert run_mlm("run", "fit", cwd=project_dir).returncode == 0
    done = run_mlm("check", cwd=project_dir)
    assert done.returncode == 1, done.stdout
    assert "FAIL" in done.stdout
    failed = {r.name for r in Project(project_dir).check() if not r.passed}
    assert {"r_hat", "ess_bulk"} <= failed
    assert "reparameterize" in done.stdout


def test_check_thresholds_come_from_mlm_toml(fitted_dir: Path):
    toml = fitted_dir / "mlm.toml"
    toml.write_text(toml.read_text() + "\n[check]\ness_bulk = 100000\n")
    done = run_mlm("check", cwd=fitted_dir)
    assert done.returncode == 1
    # The advice is a diagnosis (here: the intercept's ridge with the slope of an uncentred
    # predictor) naming the line of fit.py or model.py to change.
    said = " ".join(done.stdout.split())
    assert "ess_bulk" in said and "FAIL" in said
    assert "fit.py line" in said or "model.py line" in said, said
    toml.write_text(toml.read_text().replace("ess_bulk = 100000", "ess_bluk = 1"))
    bad = run_mlm("check", cwd=fitted_dir)
    assert bad.returncode == 1 and "[check] ess_bluk is not a known check" in bad.stderr


@pytest.mark.slow
def test_check_passes_on_the_example(tmp_path: Path):
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlm", "figures", "*.html"))
    assert run_mlm("run", "fit", cwd=root).returncode == 0
    done = run_mlm("check", cwd=root)
    assert done.returncode == 0, done.stdout
    assert "all checks passed" in done.stdout


def test_check_refuses_a_stale_trace(fitted_dir: Path):
    (fitted_dir / "fit.py").write_text(
        (fitted_dir / "fit.py").read_text().replace("draws=200", "draws=222")
    )
    done = run_mlm("check", cwd=fitted_dir)
    assert done.returncode == 1 and "no fresh trace to check" in done.stderr
