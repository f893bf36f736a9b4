"""`mlm generate` and `mlm destroy`, through the command line as a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlm.generators import VERBS

from conftest import run_mlm

FIGURES = {"coefficients.png", "posterior_predictive.png", "school_effects.png"}


def mlm_env(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlm", *args],
        cwd=cwd,
        env={**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def lines(done: subprocess.CompletedProcess) -> list[str]:
    """The action lines, as ("verb path ...") with the padding squeezed."""
    return [" ".join(line.split()) for line in done.stdout.splitlines() if line.strip()]


def actions(done: subprocess.CompletedProcess) -> list[str]:
    """The action lines alone (not the hints that follow them)."""
    return [line for line in lines(done) if line.split()[0] in VERBS]


def test_generate_figure_appends_a_working_figure_that_run_draws(fitted_dir: Path):
    graphics = fitted_dir / "graphics.py"
    before = graphics.read_text()
    pretend = run_mlm("generate", "figure", "trends", "--pretend", cwd=fitted_dir)
    assert pretend.returncode == 0, pretend.stderr
    assert lines(pretend) == ["append graphics.py trends()"]
    assert graphics.read_text() == before

    done = run_mlm("generate", "figure", "trends", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert lines(done)[0] == "append graphics.py trends()"
    text = graphics.read_text()
    assert text.startswith(before.rstrip("\n")) and "\n\n\ndef trends(idata):\n" in text
    for name in ("intercept", "slope", "sigma_school", "sigma"):  # the model's parameters
        assert f'"{name}",' in text.split("def trends")[1]

    run = run_mlm("run", cwd=fitted_dir)
    assert run.returncode == 0, run.stderr
    assert "graphics:trends drew figures/trends.png" in run.stderr
    assert "sampling" not in run.stderr  # drawn from the cached trace
    assert (fitted_dir / "figures" / "trends.png").stat().st_size > 1000

    again = run_mlm("generate", "figure", "trends", cwd=fitted_dir)
    assert again.returncode == 0 and lines(again) == ["identical graphics.py trends()"]


def test_generate_figure_of_the_data_and_from_an_existing_one(fitted_dir: Path):
    done = run_mlm("generate", "figure", "observed", "--data", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    text = (fitted_dir / "graphics.py").read_text()
    assert "def observed(idata, data):" in text and 'data["score"]' in text
    copied = run_mlm("generate", "figure", "effects2", "--from", "school_effects", cwd=fitted_dir)
    assert copied.returncode == 0, copied.stderr
    text = (fitted_dir / "graphics.py").read_text()
    body = text.split("def school_effects(idata):")[1].split("\ndef ")[0].rstrip()
    assert "def effects2(idata):" + body in text
    run = run_mlm("run", cwd=fitted_dir)
    assert run.returncode == 0, run.stderr
    assert (fitted_dir / "figures" / "observed.png").is_file()
    assert (fitted_dir / "figures" / "effects2.png").is_file()
    bad = run_mlm("generate", "figure", "_private", cwd=fitted_dir)
    assert bad.returncode == 1 and "cannot name a figure" in bad.stderr
    missing = run_mlm("generate", "figure", "x", "--from", "nope", cwd=fitted_dir)
    assert missing.returncode == 1 and "no function nope() to copy" in missing.stderr


def test_destroy_figure_undoes_exactly_what_generate_did(fitted_dir: Path):
    graphics = fitted_dir / "graphics.py"
    before = graphics.read_text()
    assert run_mlm("generate", "figure", "trends", cwd=fitted_dir).returncode == 0
    assert run_mlm("run", cwd=fitted_dir).returncode == 0
    pretend = run_mlm("destroy", "figure", "trends", "--pretend", cwd=fitted_dir)
    assert lines(pretend) == ["remove graphics.py trends()", "remove figures/trends.png"]
    assert (fitted_dir / "figures" / "trends.png").is_file()

    done = run_mlm("destroy", "figure", "trends", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert lines(done) == ["remove graphics.py trends()", "remove figures/trends.png"]
    assert graphics.read_text() == before
    assert {p.name for p in (fitted_dir / "figures").iterdir()} == FIGURES
    assert "nothing to do" in run_mlm("run", cwd=fitted_dir).stdout


def test_destroy_never_removes_what_the_user_wrote_without_being_told(fitted_dir: Path):
    graphics = fitted_dir / "graphics.py"
    assert run_mlm("generate", "figure", "trends", cwd=fitted_dir).returncode == 0
    graphics.write_text(graphics.read_text().replace('fig.suptitle("trends")', 'fig.suptitle("x")'))
    edited = graphics.read_text()

    refused = run_mlm("destroy", "figure", "trends", cwd=fitted_dir)
    assert refused.returncode == 1
    assert lines(refused) == ["conflict graphics.py trends()"]
    assert "not what `mlm generate` wrote" in refused.stderr and "--force" in refused.stderr
    skipped = run_mlm("destroy", "figure", "trends", "--skip", cwd=fitted_dir)
    assert skipped.returncode == 0
    assert lines(skipped) == ["conflict graphics.py trends()", "skip graphics.py trends()"]
    assert graphics.read_text() == edited

    hand_written = run_mlm("destroy", "figure", "coefficients", cwd=fitted_dir)
    assert hand_written.returncode == 1 and "def coefficients" in graphics.read_text()
    regenerate = run_mlm("generate", "figure", "trends", cwd=fitted_dir)
    assert regenerate.returncode == 1 and "exists and differs" in regenerate.stderr
    assert graphics.read_text() == edited

    forced = run_mlm("destroy", "figure", "trends", "--force", cwd=fitted_dir)
    assert forced.returncode == 0, forced.stderr
    assert "force graphics.py trends()" in lines(forced)
    assert "def trends" not in graphics.read_text()
    unknown = run_mlm("destroy", "figure", "trends", cwd=fitted_dir)
    assert unknown.returncode == 1 and "no figure trends()" in unknown.stderr


def test_a_conflict_at_a_terminal_shows_the_diff_and_asks(fitted_dir: Path):
    pexpect = pytest.importorskip("pexpect")
    graphics = fitted_dir / "graphics.py"
    assert run_mlm("generate", "figure", "trends", cwd=fitted_dir).returncode == 0
    graphics.write_text(graphics.read_text().replace('fig.suptitle("trends")', 'fig.suptitle("x")'))
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200", "NO_COLOR": "1"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "mlm", "generate", "figure", "trends"],
        cwd=str(fitted_dir),
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect(r"Replace trends\(\) in graphics.py\?")
    shown = child.before
    assert "conflict" in shown
    assert '-    fig.suptitle("x")' in shown and '+    fig.suptitle("trends")' in shown
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert 'fig.suptitle("x")' in graphics.read_text()

    child = pexpect.spawn(
        sys.executable,
        ["-m", "mlm", "generate", "figure", "trends"],
        cwd=str(fitted_dir),
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect(r"Replace trends\(\)")
    child.sendline("y")
    child.expect(pexpect.EOF)
    assert "force" in child.before
    assert 'fig.suptitle("trends")' in graphics.read_text()


def test_generate_and_destroy_model_move_the_figures_both_ways(fitted_dir: Path):
    figures = fitted_dir / "figures"
    done = run_mlm("generate", "model", "wide", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert lines(done)[0] == "create models/wide.py"
    assert "move figures/coefficients.png to figures/model/coefficients.png" in lines(done)
    assert {p.name for p in (figures / "model").iterdir()} == FIGURES
    assert not list(figures.glob("*.png"))
    again = run_mlm("generate", "model", "wide", cwd=fitted_dir)
    assert lines(again) == ["identical models/wide.py"]

    (figures / "wide").mkdir()
    (figures / "wide" / "coefficients.png").write_bytes(b"drawn")
    done = run_mlm("destroy", "model", "wide", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert lines(done)[:3] == [
        "remove models/wide.py",
        "remove figures/wide/coefficients.png",
        "remove figures/wide",
    ]
    assert not (fitted_dir / "models" / "wide.py").exists()
    assert {p.name for p in figures.iterdir()} == FIGURES
    status = run_mlm("status", "--json", cwd=fitted_dir)
    assert '"fresh": true' in status.stdout


def test_destroy_model_asks_before_removing_an_edited_variant(fitted_dir: Path):
    assert run_mlm("generate", "model", "wide", cwd=fitted_dir).returncode == 0
    path = fitted_dir / "models" / "wide.py"
    path.write_text(path.read_text().replace("sigma=5)", "sigma=50)"))
    refused = run_mlm("destroy", "model", "wide", cwd=fitted_dir)
    assert refused.returncode == 1 and path.is_file()
    assert "--force" in refused.stderr
    assert run_mlm("destroy", "model", "model", cwd=fitted_dir).returncode == 1
    forced = run_mlm("destroy", "model", "wide", "--force", cwd=fitted_dir)
    assert forced.returncode == 0 and not path.exists()


def test_project_and_user_templates_override_the_stubs(fitted_dir: Path, tmp_path: Path):
    user = tmp_path / "config" / "mlm" / "templates"
    user.mkdir(parents=True)
    (user / "figure.py.jinja").write_text(
        "def {{ name }}(idata):\n"
        '    """From the user\'s template."""\n'
        "    fig, ax = plt.subplots()\n"
        '    ax.set_title("{{ parameters[0] }}")\n'
        "    return fig\n"
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = mlm_env("generate", "figure", "mine", cwd=fitted_dir, **env)
    assert done.returncode == 0, done.stderr
    text = (fitted_dir / "graphics.py").read_text()
    assert "From the user's template." in text and 'ax.set_title("intercept")' in text

    (fitted_dir / "templates").mkdir()
    (fitted_dir / "templates" / "figure.py.jinja").write_text(
        'def {{ name }}(idata):\n    """From the project\'s template."""\n    return plt.figure()\n'
    )
    (fitted_dir / "templates" / "model.py.jinja").write_text(
        '"""{{ name }}: from the project\'s template."""\n\nfrom model import build  # noqa: F401\n'
    )
    done = mlm_env("generate", "figure", "ours", cwd=fitted_dir, **env)
    assert done.returncode == 0, done.stderr
    assert "From the project's template." in (fitted_dir / "graphics.py").read_text()
    done = mlm_env("generate", "model", "templated", cwd=fitted_dir, **env)
    assert done.returncode == 0, done.stderr
    assert (
        (fitted_dir / "models" / "templated.py")
        .read_text()
        .startswith('"""templated: from the project\'s template."""')
    )
    run = mlm_env("run", "graphics", "--model", "model", cwd=fitted_dir, **env)
    assert run.returncode == 0, run.stderr
    assert (fitted_dir / "figures" / "model" / "mine.png").is_file()


def test_generate_test_writes_a_recovery_test_that_passes(fitted_dir: Path):
    done = run_mlm("generate", "test", cwd=fitted_dir)
    assert done.returncode == 0, done.stderr
    assert lines(done) == ["create tests/test_recovery.py"]
    text = (fitted_dir / "tests" / "test_recovery.py").read_text()
    for name, value in (("intercept", 60.0), ("slope", 2.0), ("sigma_school", 6.0)):
        assert f'"{name}": {value},' in text
    assert "n_schools" not in text  # a design setting, not a parameter
    ruff = [sys.executable, "-m", "ruff"]
    lint = subprocess.run(
        [
            *ruff,
            "check",
            "--isolated",
            "--line-length",
            "100",
            "--select",
            "E,F,W,I",
            "tests/test_recovery.py",
        ],
        cwd=fitted_dir,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_recovery.py"],
        cwd=fitted_dir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout
    destroyed = run_mlm("destroy", "test", cwd=fitted_dir)
    assert destroyed.returncode == 0 and not (fitted_dir / "tests" / "test_recovery.py").exists()


def test_generate_test_needs_simulate(fitted_dir: Path):
    data = fitted_dir / "data.py"
    data.write_text(data.read_text().replace("def simulate(", "def _simulate("))
    done = run_mlm("generate", "test", cwd=fitted_dir)
    assert done.returncode == 1 and "data.py has no simulate(rng, ...)" in done.stderr
    assert not (fitted_dir / "tests" / "test_recovery.py").exists()


def test_force_and_skip_together_are_refused(fitted_dir: Path):
    done = run_mlm("generate", "figure", "x", "--force", "--skip", cwd=fitted_dir)
    assert done.returncode == 1 and "--force or --skip, not both" in done.stderr


def _error(done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def project_files(root: Path) -> dict[str, bytes]:
    """Every file of the project but the cache, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".mlm" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize(
    "command",
    [
        ("generate", "model", "wide"),
        ("destroy", "model", "wide"),
        ("generate", "model", "--formula", "score ~ hours + (1 | school)"),
        ("generate", "model", "--formula", "score ~ hours + (1 | school)", "--force"),
        ("generate", "model", "--formula", "score ~ hours + (1 | school)", "--skip"),
        ("generate", "model", "slopes", "--formula", "score ~ hours + (1 + hours || school)"),
        ("generate", "figure", "trends"),
        ("destroy", "figure", "coefficients", "--force"),
        ("generate", "test"),
        ("destroy", "test"),
    ],
    ids=" ".join,
)
def test_pretend_shows_exactly_the_lines_of_the_real_run(fitted_dir: Path, command):
    if command[:2] == ("destroy", "model"):  # a variant, its figures in figures/<variant>/
        assert run_mlm("generate", "model", "wide", cwd=fitted_dir).returncode == 0
        (fitted_dir / "figures" / "wide").mkdir()
        (fitted_dir / "figures" / "wide" / "coefficients.png").write_bytes(b"drawn")
    if command[:2] == ("destroy", "test"):
        assert run_mlm("generate", "test", cwd=fitted_dir).returncode == 0
    before = project_files(fitted_dir)
    pretend = run_mlm(*command, "--pretend", cwd=fitted_dir)
    assert project_files(fitted_dir) == before

    done = run_mlm(*command, cwd=fitted_dir)
    assert lines(pretend) == actions(done)
    # The same exit status and message too: a conflict nobody can be asked about stops both.
    assert pretend.returncode == done.returncode, pretend.stderr
    assert _error(pretend) == _error(done)
    if command[1] == "model" and "--skip" not in command and "--force" not in command:
        layout_changes = "--formula" not in command or "slopes" in command
        assert any(line.startswith("move") for line in lines(done)) == layout_changes
    if command[3:] == ("score ~ hours + (1 | school)",):  # model.py exists: nobody to ask
        assert done.returncode == 1 and lines(done) == [f"conflict model.py from {command[3]}"]
        assert "model.py exists and differs from what the formula writes" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert project_files(fitted_dir) != before or "--skip" in command


@pytest.mark.parametrize(
    ("args", "made"),
    [(("figure", "class"), None), (("figure", "lambda"), None), (("model", "def"), "models")],
)
def test_a_python_keyword_is_refused_as_a_name_before_anything_is_written(
    project_dir: Path, args, made
):
    """`def class(idata):` would break graphics.py for every command, destroy included."""
    before = {p: p.read_bytes() for p in project_dir.rglob("*") if p.is_file()}
    bad = run_mlm("generate", *args, cwd=project_dir)
    assert bad.returncode == 1
    assert f"{args[1]!r} cannot name" in bad.stderr and "Python keyword" in bad.stderr
    after = {p: p.read_bytes() for p in project_dir.rglob("*") if p.is_file()}
    assert after == before
    assert made is None or not (project_dir / made).exists()


def test_destroy_of_an_unknown_figure_lists_the_figures_not_the_helpers(project_dir: Path):
    graphics = project_dir / "graphics.py"
    graphics.write_text(graphics.read_text() + "\n\ndef _helper(x):\n    return x\n")
    bad = run_mlm("destroy", "figure", "nope", cwd=project_dir)
    assert bad.returncode == 1
    assert "graphics.py has no figure nope()" in bad.stderr
    assert "_helper" not in bad.stderr and "school_effects" in bad.stderr
