"""`mlm new` with the user's templates: files in $XDG_CONFIG_HOME/mlm/templates/new/ replace
(or add to) the new project's, and a formula's stubs come from the user's *.jinja."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import run_mlm

USER_FIT = '''"""fit.py for {{ cookiecutter.project_name }}: the lab's sampler settings."""

import pymc as pm


def sample(model, project):
    with model:
        return pm.sample(draws=2000, target_accept=0.99, random_seed=project.seed)
'''


def mlm_with_config(*args: str, cwd: Path, config: Path) -> subprocess.CompletedProcess:
    """`mlm ARGS` as a user whose config folder is `config`."""
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200", "XDG_CONFIG_HOME": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "mlm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def user_templates(tmp_path: Path) -> Path:
    """A config folder whose mlm/templates/new/ replaces fit.py and adds notes/plan.md."""
    config = tmp_path / "config"
    new = config / "mlm" / "templates" / "new"
    (new / "notes").mkdir(parents=True)
    (new / "fit.py").write_text(USER_FIT)
    (new / "graphics.py").write_text("def nothing(idata):\n    pass\n")
    (new / "notes" / "plan.md").write_text("# Analysis plan\n")
    return config


def test_user_templates_replace_and_add_files_of_a_new_project(tmp_path: Path):
    config = user_templates(tmp_path)
    mlm_own = run_mlm("new", "plain", "--no-git", cwd=tmp_path)
    assert mlm_own.returncode == 0, mlm_own.stderr

    done = mlm_with_config("new", "trial", "--no-git", cwd=tmp_path, config=config)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "trial"
    assert (root / "fit.py").read_text() == USER_FIT.replace(
        "{{ cookiecutter.project_name }}", "trial"
    )
    assert (root / "notes" / "plan.md").read_text() == "# Analysis plan\n"
    assert (root / "graphics.py").read_text() == "def nothing(idata):\n    pass\n"
    for kept in ("model.py", "data.py", "mlm.toml", "tests/test_model.py"):
        plain = (tmp_path / "plain" / kept).read_text().replace("plain", "trial")
        assert (root / kept).read_text() == plain, kept
    said = f"from your templates ({config / 'mlm' / 'templates' / 'new'}): fit.py, graphics.py"
    assert f"{said}, notes/plan.md" in done.stdout
    assert "from your templates" not in mlm_own.stdout


def test_with_a_formula_the_formula_files_come_from_the_users_jinja_stubs(tmp_path: Path):
    config = user_templates(tmp_path)
    (config / "mlm" / "templates" / "graphics.py.jinja").write_text(
        '"""Figures of {{ response }}, grouped: {{ groups }}."""\n\n\n'
        "def trace(idata):\n    import arviz as az\n\n    return az.plot_trace(idata)\n"
    )
    formula = "score ~ hours + (1 | school)"
    done = mlm_with_config(
        "new", "trial", "--no-git", "--formula", formula, cwd=tmp_path, config=config
    )
    assert done.returncode == 0, done.stderr
    root = tmp_path / "trial"
    assert (root / "graphics.py").read_text().startswith('"""Figures of score, grouped: True."""')
    assert "lab's sampler settings" in (root / "fit.py").read_text()
    assert formula in (root / "model.py").read_text()
    # graphics.py of templates/new/ is not used: the formula writes graphics.py.
    assert "fit.py, notes/plan.md" in done.stdout and "graphics.py," not in done.stdout


def test_an_error_in_a_users_template_names_the_file_and_leaves_nothing(tmp_path: Path):
    config = user_templates(tmp_path)
    workflow = config / "mlm" / "templates" / "new" / ".github" / "workflows" / "lint.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("key: ${{ github.sha }\n")
    done = mlm_with_config("new", "trial", cwd=tmp_path, config=config)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert f"{workflow}, line 1: template error" in message
    assert "{% raw %}" in message and "Traceback" not in done.stderr
    assert not (tmp_path / "trial").exists()

    workflow.write_text("{% raw %}key: ${{ github.sha }}{% endraw %}\n")
    done = mlm_with_config("new", "trial", "--no-git", cwd=tmp_path, config=config)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "trial" / ".github" / "workflows" / "lint.yml").read_text() == (
        "key: ${{ github.sha }}\n"
    )
