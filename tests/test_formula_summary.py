"""`mlm summary` for people and logs (issue 12, item 5): readable piped and at 80 columns,
no number ever cut short, 4 significant figures, `--var` to pick parameters, the
auxiliary z_* hidden unless `--all`, and no RuntimeWarning from a correlation matrix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_formula import simulate

from conftest import FAST_FIT, run_mlm

NUMBER = re.compile(
    r"^-?\d\.\d{3}(e[+-]\d+)?$|^-?\d{2}\.\d{2}$|^-?\d{3}\.\d$|^-?\d{4}\.?$|^-?0\.0*\d{4}$"
)


def summary(root: Path, *args: str, terminal_width: int | None = None):
    """`mlm summary ARGS` as a pipe sees it, or as a terminal WIDTH columns wide does."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("COLUMNS", None)
    if terminal_width is not None:
        env.update(FORCE_COLOR="1", COLUMNS=str(terminal_width), TERM="xterm")
    return subprocess.run(
        [sys.executable, "-W", "default", "-m", "mlm", "summary", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def rows(stdout: str) -> dict[str, list[str]]:
    """Parameter -> its cells, from the plain (piped) table."""
    lines = stdout.splitlines()
    assert lines[0].split() == [
        "parameter",
        "mean",
        "sd",
        "eti95_lb",
        "eti95_ub",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    table = {}
    for line in lines[1:]:
        if " chains x " in line or line.startswith("not shown: "):
            break
        *name, mean, sd, lb, ub, bulk, tail, rhat = line.split()
        table[" ".join(name)] = [mean, sd, lb, ub, bulk, tail, rhat]
    return table


def test_piped_summary_is_plain_text_with_four_significant_figures(fitted_dir):
    done = summary(fitted_dir)
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout and "━" not in done.stdout and "\x1b" not in done.stdout
    table = rows(done.stdout)
    assert "slope" in table and "school_effect[school_1]" in table
    assert not any(name.startswith("z_") for name in table)  # auxiliary: hidden
    for name, (mean, sd, lb, ub, bulk, tail, rhat) in table.items():
        for number in (mean, sd, lb, ub):
            digits = re.sub(r"e[+-]\d+$", "", number).lstrip("-").replace(".", "").lstrip("0")
            assert len(digits) == 4, (name, number)  # 4 significant figures, zeros kept
        assert bulk.isdigit() and tail.isdigit() and re.fullmatch(r"\d\.\d{3}", rhat)
    assert "RuntimeWarning" not in done.stderr


def test_all_shows_the_auxiliary_variables_and_var_picks_some(fitted_dir):
    every = rows(summary(fitted_dir, "--all").stdout)
    assert any(name.startswith("z_school[") for name in every)
    picked = rows(summary(fitted_dir, "--var", "slope", "--var", "sigma").stdout)
    assert list(picked) == ["slope", "sigma"]
    asked = rows(summary(fitted_dir, "--var", "z_school").stdout)  # named: shown
    assert all(name.startswith("z_school[") for name in asked) and asked


def test_an_unknown_var_is_answered_with_the_trace_variables(fitted_dir):
    done = summary(fitted_dir, "--var", "slop")
    assert done.returncode == 1
    assert "no variable 'slop' (did you mean slope?)" in done.stderr
    assert "intercept, slope" in " ".join(done.stderr.split()).replace("\n", "")


def test_summary_fits_an_80_column_terminal_without_cutting_a_number(fitted_dir):
    done = summary(fitted_dir, terminal_width=80)
    assert done.returncode == 0, done.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert "…" not in plain
    assert all(len(line) <= 80 for line in plain.splitlines()), plain
    piped = rows(summary(fitted_dir).stdout)
    for name, cells in piped.items():
        if name in plain:  # a long name may fold onto two lines; its numbers stay whole
            line = next(line for line in plain.splitlines() if line.startswith(name + " "))
            assert line.split()[-7:] == cells


def test_summary_folds_names_only_after_a_bracket_at_a_narrow_terminal(fitted_dir):
    """At 75 columns `school_effect[school_1]` does not fit beside the numbers: it folds as
    `school_effect[` / `school_1]`, never inside a word."""
    done = summary(fitted_dir, terminal_width=75)
    assert done.returncode == 0, done.stderr
    plain = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert "…" not in plain and all(len(line) <= 75 for line in plain.splitlines()), plain
    piped = rows(summary(fitted_dir).stdout)
    names = []
    for line in plain.splitlines()[2:]:
        tokens = line.split()
        if len(tokens) == 8:
            names.append([tokens[0]])
        elif len(tokens) == 1 and names:
            names[-1].append(tokens[0])
        else:
            break
    assert ["".join(pieces) for pieces in names] == list(piped), plain
    assert all(p.endswith("[") for pieces in names for p in pieces[:-1]), plain
    assert any(len(pieces) > 1 for pieces in names), plain  # something did fold


def test_prob_sets_the_interval_and_its_column_names(fitted_dir):
    done = summary(fitted_dir, "--prob", "0.5", "--var", "slope")
    header = done.stdout.splitlines()[0].split()
    assert header[3:5] == ["eti50_lb", "eti50_ub"], done.stdout
    wide = summary(fitted_dir, "--prob", "0.99", "--var", "slope").stdout.splitlines()[1].split()
    narrow = done.stdout.splitlines()[1].split()
    assert float(wide[3]) < float(narrow[3]) < float(narrow[4]) < float(wide[4])


@pytest.fixture(scope="module")
def correlated(tmp_path_factory) -> Path:
    """A generated project with a correlated intercept and slope, fitted with few draws."""
    parent = tmp_path_factory.mktemp("corr")
    csv = parent / "sim.csv"
    simulate().to_csv(csv, index=False)
    done = run_mlm(
        "new", "corr", "--formula", "y ~ x + (1 + x | g)", "--data", str(csv), cwd=parent
    )
    assert done.returncode == 0, done.stderr
    root = parent / "corr"
    (root / "fit.py").write_text(FAST_FIT)
    done = run_mlm("run", "fit", cwd=root)
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.slow
def test_a_correlation_matrix_gives_one_row_per_correlation_and_no_warning(correlated):
    done = summary(correlated)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr and "invalid value" not in done.stderr
    table = rows(done.stdout)
    assert [n for n in table if n.startswith("corr_g")] == ["corr_g[Intercept, x]"]
    assert not any(n.startswith(("z_g", "chol_g")) for n in table)
    every = rows(summary(correlated, "--all").stdout)
    assert "corr_g[x, x]" in every
    # the constant diagonal reads alike in both cells: 1, sd 0, no ESS or r_hat
    for cell in ("corr_g[Intercept, Intercept]", "corr_g[x, x]"):
        assert every[cell] == ["1.000", "0.000", "1.000", "1.000", "-", "-", "-"], every[cell]


@pytest.mark.slow
def test_a_generated_model_reads_like_lme4s_summary(correlated):
    """Population-level effects first (Intercept, not Intercept_centred), then the group's
    SDs and correlation, then the residual SD; the group effects and auxiliaries are left
    out, and the line under the table says how to see them."""
    done = summary(correlated)
    assert list(rows(done.stdout)) == [
        "Intercept",
        "b_x",
        "sigma_g[Intercept]",
        "sigma_g[x]",
        "corr_g[Intercept, x]",
        "sigma",
    ]
    note = next(line for line in done.stdout.splitlines() if line.startswith("not shown: "))
    assert "u_g" in note and "--var u_g" in note and "--all" in note
    effects = rows(summary(correlated, "--var", "u_g").stdout)
    assert effects and all(name.startswith("u_g[") for name in effects)


@pytest.mark.slow
def test_summary_of_a_generated_model_reads_in_a_log(correlated, tmp_path):
    log = tmp_path / "summary.log"
    with log.open("w") as stream:
        subprocess.run(
            [sys.executable, "-m", "mlm", "summary"], cwd=correlated, stdout=stream, check=True
        )
    text = log.read_text()
    assert "\x1b" not in text and "…" not in text
    assert text.splitlines()[0].startswith("parameter")


@pytest.mark.slow
def test_group_intercepts_centred_on_the_intercept_are_shown_once(tmp_path):
    # (1 | g) on levels of 20 rows is written centred on the intercept: a_g = Intercept +
    # u_g, the same effects twice. As lme4's summary, the default shows neither (lme4's
    # ranef() does: --var u_g); --all shows both.
    csv = tmp_path / "sim.csv"
    simulate().to_csv(csv, index=False)
    made = run_mlm("new", "one", "--formula", "y ~ x + (1 | g)", "--data", str(csv), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "one"
    assert 'a_g = pm.Normal("a_g"' in (root / "model.py").read_text()
    (root / "fit.py").write_text(FAST_FIT)
    assert run_mlm("run", "fit", cwd=root).returncode == 0
    table = rows(summary(root).stdout)
    assert not any(n.startswith(("a_g", "u_g")) for n in table) and "sigma_g" in table
    assert "u_g[0]" in rows(summary(root, "--var", "u_g").stdout)
    every = rows(summary(root, "--all").stdout)
    assert "a_g[0]" in every and "u_g[0]" in every
    assert "a_g[0]" in rows(summary(root, "--var", "a_g").stdout)


def test_json_holds_every_variable_with_its_role(fitted_dir):
    import json

    done = summary(fitted_dir, "--json")
    assert done.returncode == 0, done.stderr
    parameters = {p["parameter"]: p for p in json.loads(done.stdout)["parameters"]}
    assert parameters["z_school[school_1]"]["role"] == "auxiliary"  # as --all
    assert parameters["slope"]["role"] == "other" and parameters["sigma"]["role"] == "residual"
    assert {"eti95_lb", "eti95_ub", "ess_bulk", "r_hat"} <= set(parameters["slope"])
    picked = json.loads(summary(fitted_dir, "--json", "--var", "slope").stdout)["parameters"]
    assert [p["parameter"] for p in picked] == ["slope"]
