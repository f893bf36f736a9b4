"""`mlm new`: a git repository with the .gitignore, and a CI workflow that runs the analysis."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlm.requirement import installed_source, source_of

from conftest import run_mlm

GIT = shutil.which("git")


IDENTITY = {
    "GIT_AUTHOR_NAME": "A User",
    "GIT_AUTHOR_EMAIL": "user@example.org",
    "GIT_COMMITTER_NAME": "A User",
    "GIT_COMMITTER_EMAIL": "user@example.org",
}


def new_project(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    """`mlm new trial` with git's configuration from `env` alone (not this machine's)."""
    import sys

    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "mlm", "new", "trial", *args],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def git_out(*args: str, cwd: Path) -> str:
    return subprocess.run([GIT, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_new_initialises_a_git_repository_that_ignores_the_cache(tmp_path: Path):
    done = new_project(tmp_path, IDENTITY)
    assert done.returncode == 0, done.stderr
    assert "initialised a git repository with a first commit of the code" in done.stdout
    assert "data/ is not committed" in done.stdout
    root = tmp_path / "trial"
    assert (root / ".git").is_dir()
    # one commit, of the code as mlm wrote it: an edit can be undone with git checkout
    assert len(git_out("rev-list", "--all", cwd=root).split()) == 1
    committed = set(git_out("ls-files", cwd=root).split())
    assert {"model.py", "fit.py", "data.py", "graphics.py", "mlm.toml"} <= committed
    assert ".github/workflows/mlm.yml" in committed and ".gitignore" in committed
    assert not any(path.startswith("data/") for path in committed)  # the user's call
    (root / "fit.py").write_text("# an edit\n")
    git_out("checkout", "fit.py", cwd=root)
    assert "pm.sample(" in (root / "fit.py").read_text()
    # the cache is ignored; the data are left for the user to add
    (root / ".mlm").mkdir()
    (root / ".mlm" / "data.json").write_text("{}")
    status = git_out("status", "--porcelain", "--untracked-files=all", cwd=root)
    listed = {line[3:] for line in status.splitlines()}
    assert listed and all(path.startswith("data/") for path in listed), listed


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_without_a_git_identity_the_repository_is_made_and_the_user_told(tmp_path: Path):
    # git may guess an identity from the host's name; useConfigOnly makes it ask for one
    refuse = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.useConfigOnly"}
    done = new_project(tmp_path, {**refuse, "GIT_CONFIG_VALUE_0": "true"})
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if "git repository" in ln)
    assert "no first commit" in line and "commit the code yourself" in line
    root = tmp_path / "trial"
    assert (root / ".git").is_dir()
    assert "model.py" in git_out("status", "--porcelain", "--untracked-files=all", cwd=root)


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
    assert next(step["name"] for step in steps if "run" in step) == "Install mlm and pytest"
    cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == ".mlm"
    python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-py"))
    # setup-python's pip cache needs a file to key on, and the project has no requirements.txt
    assert python["with"]["cache-dependency-path"] == ".github/workflows/mlm.yml"
    assert "${{ github.sha }}" in cache["with"]["key"]  # GitHub's syntax, not cookiecutter's


def install_step(root: Path) -> tuple[dict, str]:
    """The workflow's install step, and the workflow's text."""
    import yaml

    text = (root / ".github" / "workflows" / "mlm.yml").read_text()
    steps = yaml.safe_load(text)["jobs"]["analysis"]["steps"]
    return next(s for s in steps if s.get("name") == "Install mlm and pytest"), text


def test_the_workflow_installs_mlm_from_where_this_mlm_came_from(tmp_path: Path):
    pytest.importorskip("yaml")
    done = run_mlm("new", "trial", "--no-git", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    step, text = install_step(tmp_path / "trial")
    source = installed_source()
    assert source.origin in text  # the workflow says where this mlm came from
    if source.requirement is not None:  # installed from a git URL, an archive or an index
        assert step["run"] == f'python -m pip install "{source.requirement}" pytest'
        assert "todo" not in done.stdout
        return
    # Installed from a folder CI cannot reach (as by scripts/dev.sh): the user must say.
    assert "# TODO: set MLM_REQUIREMENT" in text
    assert step["env"] == {"MLM_REQUIREMENT": ""}
    assert "todo: set MLM_REQUIREMENT in .github/workflows/mlm.yml" in done.stdout
    unset = subprocess.run(
        ["bash", "-c", step["run"]],
        env={"PATH": os.environ["PATH"], "MLM_REQUIREMENT": ""},
        capture_output=True,
        text=True,
    )
    assert unset.returncode == 1 and "::error" in unset.stdout
    assert "pip install" not in unset.stdout + unset.stderr  # stops before installing


def test_a_pinned_requirement_is_the_workflows_install_line(tmp_path: Path):
    pytest.importorskip("yaml")
    from cookiecutter.main import cookiecutter

    from mlm.codegen import template_dir

    requirement = "mlm @ git+https://example.org/lab/mlm.git@" + "a" * 40
    cookiecutter(
        str(template_dir()),
        no_input=True,
        extra_context={
            "project_name": "trial",
            "mlm_requirement": requirement,
            "mlm_origin": "mlm 0.1.0 from https://example.org/lab/mlm.git at commit " + "a" * 40,
        },
        output_dir=str(tmp_path),
        accept_hooks=False,
    )
    step, text = install_step(tmp_path / "trial")
    assert step["run"] == f'python -m pip install "{requirement}" pytest'
    assert "env" not in step and "TODO" not in text
    assert "# The mlm `mlm new` ran with: mlm 0.1.0 from https://example.org/lab/mlm.git" in text


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [GIT, "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_where_mlm_came_from_as_a_pip_requirement(tmp_path: Path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    from_git = source_of(
        {
            "url": "https://github.com/lab/mlm.git",
            "vcs_info": {"vcs": "git", "commit_id": commit, "requested_revision": "main"},
        },
        "0.1.0",
    )
    assert from_git.requirement == f"mlm @ git+https://github.com/lab/mlm.git@{commit}"
    archive = source_of(
        {
            "url": "https://example.org/mlm-0.1.0.tar.gz",
            "archive_info": {"hashes": {"sha256": "ab"}},
        },
        "0.1.0",
    )
    assert archive.requirement == "mlm @ https://example.org/mlm-0.1.0.tar.gz#sha256=ab"
    assert source_of(None, "0.1.0").requirement == "mlm==0.1.0"  # from a package index
    folder = tmp_path / "mlm-src"
    folder.mkdir()
    local = source_of({"url": folder.as_uri(), "dir_info": {"editable": True}}, "0.1.0")
    assert local.requirement is None and str(folder) in local.origin


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_a_checkout_is_pinned_to_its_commit_only_once_pushed(tmp_path: Path):
    repository = tmp_path / "mlm-src"
    (repository / "framework").mkdir(parents=True)
    (repository / "pyproject.toml").write_text("[project]\nname = 'mlm'\n")
    git("init", "--quiet", cwd=repository)
    git("add", ".", cwd=repository)
    git("commit", "--quiet", "-m", "first", cwd=repository)
    commit = git("rev-parse", "HEAD", cwd=repository)
    editable = {"url": repository.as_uri(), "dir_info": {"editable": True}}
    assert source_of(editable).requirement is None  # no remote

    git("remote", "add", "origin", "git@github.com:lab/mlm.git", cwd=repository)
    assert source_of(editable).requirement is None  # not pushed
    git("update-ref", "refs/remotes/origin/main", commit, cwd=repository)  # as after a push
    pinned = source_of(editable)
    assert pinned.requirement == f"mlm @ git+ssh://git@github.com/lab/mlm.git@{commit}"
    inside = {"url": (repository / "framework").as_uri(), "dir_info": {}}
    assert source_of(inside).requirement.endswith(f"@{commit}#subdirectory=framework")

    git("commit", "--quiet", "--allow-empty", "-m", "local only", cwd=repository)
    assert source_of(editable).requirement is None
    git("remote", "set-url", "origin", str(tmp_path / "elsewhere"), cwd=repository)
    git("update-ref", "refs/remotes/origin/main", "HEAD", cwd=repository)
    assert source_of(editable).requirement is None  # a path: not reachable from CI
