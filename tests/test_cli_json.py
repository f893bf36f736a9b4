"""The command line for people and scripts: --version, --json shapes, help text, words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlm.version import __version__

from conftest import run_mlm


def test_version_prints_mlm_and_its_version(tmp_path: Path):
    done = run_mlm("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"mlm {__version__}"


def test_status_json_has_the_documented_shape(fitted_dir: Path):
    done = run_mlm("status", "--json", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert set(status) == {"project", "root", "variants", "fresh", "stages"}
    assert status["project"] == "demo" and status["variants"] == ["model"]
    assert status["fresh"] is True
    stages = [row["stage"] for row in status["stages"]]
    assert stages[:3] == ["data", "model", "fit"]
    assert "graphics:coefficients" in stages
    for row in status["stages"]:
        assert set(row) == {"stage", "variant", "state", "reason", "key"}
    assert status["stages"][0]["reason"] == "120 rows"

    (fitted_dir / "fit.py").write_text(
        (fitted_dir / "fit.py").read_text().replace("draws=200", "draws=201")
    )
    stale = json.loads(run_mlm("status", "--json", cwd=fitted_dir).stdout)
    assert stale["fresh"] is False
    fit = next(r for r in stale["stages"] if r["stage"] == "fit")
    assert fit["state"] == "stale" and "fit.py changed" in fit["reason"]


def test_check_json_has_the_documented_shape_and_exit_code(fitted_dir: Path):
    done = run_mlm("check", "--json", cwd=fitted_dir)
    report = json.loads(done.stdout)
    assert set(report) == {"passed", "checks", "advice"}
    assert done.returncode == (0 if report["passed"] else 1)
    names = [c["check"] for c in report["checks"]]
    assert {"r_hat", "ess_bulk", "ess_tail", "divergences"} <= set(names)
    for row in report["checks"]:
        assert set(row) == {"variant", "check", "value", "threshold", "passed", "detail"}
    (fitted_dir / "mlm.toml").write_text(
        (fitted_dir / "mlm.toml").read_text() + "\n[check]\ness_bulk = 100000\n"
    )
    failed = run_mlm("check", "--json", cwd=fitted_dir)
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["passed"] is False
    assert report["advice"] and all(a["variant"] == "model" for a in report["advice"])
    assert not next(c for c in report["checks"] if c["check"] == "ess_bulk")["passed"]


def test_summary_json_has_the_documented_shape(fitted_dir: Path):
    done = run_mlm("summary", "--json", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {"fresh", "key", "made_at", "wall_time_s", "diagnostics", "parameters"} <= set(summary)
    assert summary["fresh"] is True
    assert summary["diagnostics"]["chains"] == 2 and summary["diagnostics"]["draws"] == 200
    slope = next(p for p in summary["parameters"] if p["parameter"] == "slope")
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(slope)
    assert 0 < slope["mean"] < 5


def test_help_paragraphs_are_not_broken_mid_sentence(tmp_path: Path):
    run = run_mlm("run", "--help", cwd=tmp_path).stdout
    assert "every variant is run (and, for graphics, compared)" in " ".join(run.split())
    check = run_mlm("check", "--help", cwd=tmp_path).stdout
    assert "mlm.toml's [check]" in check


def test_unknown_stage_lists_every_stage_and_suggests_the_closest(fitted_dir: Path):
    done = run_mlm("run", "fitt", cwd=fitted_dir)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "unknown stage 'fitt' (did you mean 'fit'?)" in message
    assert "data, model, fit, graphics, compare" in message


def test_one_row_and_one_divergence_are_singular(fitted_dir: Path):
    from mlm.words import plural

    assert plural(1, "divergence") == "1 divergence"
    assert plural(0, "divergence") == "0 divergences"
    data = fitted_dir / "data" / "scores.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:2]) + "\n")
    done = run_mlm("run", "data", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "loaded 1 row x 4 columns" in done.stderr
    status = json.loads(run_mlm("status", "--json", cwd=fitted_dir).stdout)
    assert status["stages"][0]["reason"] == "1 row"
    summary = run_mlm("summary", cwd=fitted_dir)
    assert "divergences," in summary.stdout or "1 divergence," in summary.stdout
    assert "1 divergences" not in summary.stdout


def test_a_public_helper_with_an_unknown_parameter_is_told_about_the_underscore(
    fitted_dir: Path,
):
    graphics = fitted_dir / "graphics.py"
    graphics.write_text(graphics.read_text() + "\n\ndef label(ax, text):\n    ax.set_title(text)\n")
    done = run_mlm("run", cwd=fitted_dir)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "label() asks for parameter 'ax'" in message
    assert "name it _label" in message


def test_adding_a_variant_moves_the_single_variant_figures(fitted_dir: Path):
    figures = fitted_dir / "figures"
    before = {p.name: p.read_bytes() for p in figures.glob("*.png")}
    assert set(before) == {"coefficients.png", "posterior_predictive.png", "school_effects.png"}
    shutil.copyfile(fitted_dir / "model.py", fitted_dir / "models.py")  # not a variant
    (fitted_dir / "models").mkdir()
    shutil.copyfile(fitted_dir / "model.py", fitted_dir / "models" / "copy.py")
    done = run_mlm("run", "graphics:coefficients", "--model", "model", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "moved figures/coefficients.png to figures/model/coefficients.png" in done.stderr
    assert not list(figures.glob("*.png"))
    for name, content in before.items():
        assert (figures / "model" / name).read_bytes() == content
    status = json.loads(run_mlm("status", "--json", cwd=fitted_dir).stdout)
    own = [r for r in status["stages"] if r["variant"] == "model" and r["stage"] != "compare"]
    assert all(r["state"] == "fresh" for r in own), own
