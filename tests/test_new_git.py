"""`mlm new`: a git repository with the .gitignore, and a CI workflow that runs the analysis."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_mlm

GIT = shutil.which("git")


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_new_initialises_a_git_repository_that_ignores_the_cache(tmp_path: Path):
    done = run_mlm("new", "trial", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "initialised a git repository" in done.stdout
    root = tmp_path / "trial"
    assert (root / ".git").is_dir()
    (root / ".mlm").mkdir()
    (root / ".mlm" / "data.json").write_text("{}")
    status = subprocess.run(
        [GIT, "status", "--porcelain", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line[3:] for line in status.splitlines()}
    assert "model.py" in listed and ".github/workflows/mlm.yml" in listed
    assert not any(path.startswith(".mlm") for path in listed)


def test_new_with_no_git_makes_no_repository(tmp_path: Path):
    done = run_mlm("new", "trial", "--no-git", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "trial" / ".git").exists()
    assert "repository" not in done.stdout


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_new_inside_a_repository_makes_no_nested_one(tmp_path: Path):
    subprocess.run([GIT, "init", "--quiet", str(tmp_path)], check=True)
    done = run_mlm("new", "trial", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "inside a git repository already" in done.stdout
    assert not (tmp_path / "trial" / ".git").exists()


def test_new_writes_a_ci_workflow_that_runs_run_check_and_pytest(tmp_path: Path):
    yaml = pytest.importorskip("yaml")
    assert run_mlm("new", "trial", "--no-git", cwd=tmp_path).returncode == 0
    workflow = yaml.safe_load(
        (tmp_path / "trial" / ".github" / "workflows" / "mlm.yml").read_text()
    )
    steps = workflow["jobs"]["analysis"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert commands[-3:] == ["mlm run", "mlm check", "pytest"]
    assert any("pip install" in c and "mlm" in c for c in commands)
    cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == ".mlm"
    assert "${{ github.sha }}" in cache["with"]["key"]  # GitHub's syntax, not cookiecutter's
