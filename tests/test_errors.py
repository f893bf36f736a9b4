"""Bad projects: one message naming file and function, exit code 1, the cache untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cache_snapshot, run_mlm


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new))


def break_missing_model_file(root: Path) -> None:
    (root / "model.py").unlink()


def break_missing_build_function(root: Path) -> None:
    replace_in(root / "model.py", "def build(data):", "def make(data):")


def break_unknown_parameter(root: Path) -> None:
    replace_in(root / "model.py", "def build(data):", "def build(dataset):")


def break_exception_in_user_code(root: Path) -> None:
    replace_in(
        root / "model.py",
        '    school_idx, schools = pd.factorize(data["school"], sort=True)',
        '    school_idx, schools = pd.factorize(data["schoool"], sort=True)',
    )


def break_load_returns_list(root: Path) -> None:
    replace_in(root / "data.py", "    return data\n", "    return data.to_numpy().tolist()\n")


def break_build_returns_none(root: Path) -> None:
    replace_in(root / "model.py", "    return model\n", "")


def break_syntax(root: Path) -> None:
    replace_in(root / "model.py", "def build(data):", "def build(data)")


def break_unknown_figure_parameter(root: Path) -> None:
    replace_in(root / "graphics.py", "def school_effects(idata):", "def school_effects(trace):")


def break_graphics_returns_nothing(root: Path) -> None:
    replace_in(
        root / "graphics.py",
        '    fig.suptitle("Posterior distributions',
        '    return None\n    fig.suptitle("Posterior distributions',
    )


CASES = [
    (break_missing_model_file, ["model.py not found", "build(data) -> pymc.Model"]),
    (break_missing_build_function, ["model.py has no function build()"]),
    (
        break_unknown_parameter,
        ["model.py: build() asks for parameter 'dataset'", "available here: data, project"],
    ),
    (
        break_exception_in_user_code,
        ["model.py, in build() raised KeyError: 'schoool'", 'model.py", line', 'data["schoool"]'],
    ),
    (break_load_returns_list, ["data.py: load() returned list, expected a pandas.DataFrame"]),
    (
        break_build_returns_none,
        ["model.py: build() returned NoneType, expected a pymc.Model", "return model"],
    ),
    (break_syntax, ["model.py, line", "syntax error"]),
    (
        break_unknown_figure_parameter,
        ["graphics.py: school_effects() asks for parameter 'trace'", "idata"],
    ),
]


def data_record(root: Path) -> tuple:
    record = json.loads((root / ".mlm" / "data.json").read_text())
    return record["key"], record["inputs"]


@pytest.mark.parametrize("breaker, expected", CASES, ids=[c[0].__name__[6:] for c in CASES])
def test_bad_project_gives_one_clear_message_and_exit_1(fitted_dir, breaker, expected):
    # Make the stages up to the broken one stale, so that it really runs (a stage before
    # it that succeeds may cache its complete result; this test is about the broken one).
    if "graphics" not in breaker.__name__ and "figure" not in breaker.__name__:
        replace_in(fitted_dir / "fit.py", "draws=200", "draws=201")
    replace_in(fitted_dir / "graphics.py", "prob=0.89", "prob=0.9")
    breaker(fitted_dir)
    before = cache_snapshot(fitted_dir)
    recorded = data_record(fitted_dir)
    done = run_mlm("run", "-f", cwd=fitted_dir)
    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stderr
    for part in expected:
        assert part in message, message
    assert "site-packages" not in message and "framework/mlm" not in message, message
    assert "Traceback (most recent call last)" not in message
    # The data stage may note new file stamps (a copied project's files have new ctimes);
    # what it recorded, the data's key and inputs, and every other cache file stay.
    after = cache_snapshot(fitted_dir)
    assert {k: v for k, v in after.items() if k != "data.json"} == {
        k: v for k, v in before.items() if k != "data.json"
    }
    assert data_record(fitted_dir) == recorded


def test_user_traceback_shows_only_the_users_frames(project_dir):
    (project_dir / "helpers.py").write_text("def scale(x):\n    return x / 0\n")
    replace_in(
        project_dir / "model.py", "import pymc as pm\n", "import pymc as pm\n\nimport helpers\n"
    )
    replace_in(
        project_dir / "model.py",
        "    with pm.Model(coords=coords) as model:",
        "    helpers.scale(1)\n    with pm.Model(coords=coords) as model:",
    )
    done = run_mlm("run", "model", cwd=project_dir)
    assert done.returncode == 1
    assert "ZeroDivisionError: division by zero" in done.stderr
    assert 'helpers.py", line 2, in scale' in done.stderr
    assert 'model.py", line' in done.stderr
    assert "mlm/slots.py" not in done.stderr


def test_outside_a_project_mlm_says_so(tmp_path):
    done = run_mlm("status", cwd=tmp_path)
    assert done.returncode == 1
    assert "no mlm.toml found" in done.stderr


def test_bad_mlm_toml_names_the_key(project_dir):
    replace_in(project_dir / "mlm.toml", "seed = 20111130", 'seed = "abc"')
    done = run_mlm("status", cwd=project_dir)
    assert done.returncode == 1
    assert "mlm.toml: [project] seed must be int" in done.stderr


def test_exit_statuses_tell_a_mistyped_command_from_a_fault_and_from_a_bug(
    project_dir, monkeypatch
):
    mistyped = run_mlm("statsu", cwd=project_dir)
    assert mistyped.returncode == 2 and "Did you mean 'status'" in mistyped.stderr
    assert run_mlm("run", "plots", cwd=project_dir).returncode == 1
    # A bug inside mlm: one line naming it, no traceback, and a status of its own.
    from typer.testing import CliRunner

    from mlm import cli
    from mlm.project import Project

    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(Project, "status", broken)
    monkeypatch.chdir(project_dir)
    monkeypatch.delenv("MLM_DEBUG", raising=False)
    done = CliRunner().invoke(cli.app, ["status"])
    assert done.exit_code == cli.EXIT_INTERNAL == 70, done.output
    assert "mlm internal error: ZeroDivisionError: division by zero" in done.output
    assert "Traceback" not in done.output


def test_unknown_stage_is_refused(project_dir):
    done = run_mlm("run", "plots", cwd=project_dir)
    assert done.returncode == 1
    assert "unknown stage 'plots'" in done.stderr


def test_a_failing_figure_does_not_stop_the_others_and_is_named(fitted_dir):
    replace_in(fitted_dir / "graphics.py", "prob=0.89", "prob=0.9")  # every figure is stale
    break_graphics_returns_nothing(fitted_dir)
    before = cache_snapshot(fitted_dir)
    done = run_mlm("run", cwd=fitted_dir)
    assert done.returncode == 1
    assert (
        "graphics.py: coefficients() returned NoneType, expected a matplotlib Figure" in done.stderr
    )
    after = cache_snapshot(fitted_dir)
    assert after["graphics/model/coefficients.json"] == before["graphics/model/coefficients.json"]
    for name in ("school_effects", "posterior_predictive"):
        assert after[f"graphics/model/{name}.json"] != before[f"graphics/model/{name}.json"]
    assert {k: v for k, v in after.items() if k.startswith("fit/")} == {
        k: v for k, v in before.items() if k.startswith("fit/")
    }
