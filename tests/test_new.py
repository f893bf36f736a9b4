"""`mlm new`: a runnable project from the template, and refusals that overwrite nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_mlm

EXPECTED = {
    "mlm.toml",
    "data.py",
    "model.py",
    "fit.py",
    "graphics.py",
    "README.md",
    ".gitignore",
    "data/scores.csv",
    "tests/test_model.py",
    "tests/conftest.py",
    ".github/workflows/mlm.yml",
}


def test_new_renders_every_slot_and_file(tmp_path: Path):
    done = run_mlm("new", "trial", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "trial"
    files = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
    assert files == EXPECTED
    assert 'name = "trial"' in (root / "mlm.toml").read_text()
    assert ".mlm/" in (root / ".gitignore").read_text().splitlines()
    assert "{{" not in "".join((root / f).read_text() for f in EXPECTED if f.endswith(".py"))


def test_generated_python_is_formatted_and_lint_clean(tmp_path: Path):
    run_mlm("new", "trial", cwd=tmp_path)
    root = tmp_path / "trial"
    ruff = [sys.executable, "-m", "ruff"]
    lint = subprocess.run(
        [*ruff, "check", "--isolated", "--line-length", "100", str(root)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [*ruff, "format", "--isolated", "--line-length", "100", "--check", str(root)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout


def test_new_refuses_a_non_empty_folder_and_overwrites_nothing(tmp_path: Path):
    (tmp_path / "trial").mkdir()
    (tmp_path / "trial" / "notes.txt").write_text("mine")
    done = run_mlm("new", "trial", cwd=tmp_path)
    assert done.returncode == 1
    assert "exists and is not empty" in done.stderr
    assert [p.name for p in (tmp_path / "trial").iterdir()] == ["notes.txt"]


def test_new_accepts_an_existing_empty_folder(tmp_path: Path):
    (tmp_path / "trial").mkdir()
    assert run_mlm("new", "trial", cwd=tmp_path).returncode == 0
    assert (tmp_path / "trial" / "model.py").is_file()


@pytest.mark.parametrize("name", ["../escape", "my project", "-rf", "a/b", ".hidden", "x" * 101])
def test_new_refuses_names_that_are_not_valid_folder_names(tmp_path: Path, name: str):
    done = run_mlm("new", "--", name, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "is not a valid project name" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_new_project_runs_end_to_end_and_its_own_tests_pass(tmp_path: Path):
    assert run_mlm("new", "demo", cwd=tmp_path).returncode == 0
    root = tmp_path / "demo"
    done = run_mlm("run", cwd=root)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (root / "figures").iterdir()) == [
        "coefficients.png",
        "posterior_predictive.png",
        "school_effects.png",
    ]
    status = run_mlm("status", cwd=root)
    assert status.stdout.count("fresh") == 6, status.stdout
    assert "stale" not in status.stdout and "missing" not in status.stdout
    again = run_mlm("run", "graphics", cwd=root)
    assert "nothing to do" in again.stdout
    assert "sampling" not in again.stderr and "loading cached trace" not in again.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout
