"""Installation: the wheel carries the template, and the set-up script insists on Python 3.12+."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_mlm_new_then_run_data_works(tmp_path: Path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheel = next(dist.glob("mlm-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]

    work = tmp_path / "work"
    work.mkdir()
    mlm = str(venv / "bin" / "mlm")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    new = subprocess.run([mlm, "new", "demo"], cwd=work, capture_output=True, text=True, env=env)
    assert new.returncode == 0, new.stderr
    # The template came from the installed wheel, not from this source tree.
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from mlm.template import template_dir; print(template_dir())",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert str(venv) in where.stdout, where.stdout + where.stderr
    data = subprocess.run(
        [mlm, "run", "data"], cwd=work / "demo", capture_output=True, text=True, env=env
    )
    assert data.returncode == 0, data.stderr
    assert "loaded 120 rows" in data.stderr
    status = subprocess.run(
        [mlm, "status"],
        cwd=work / "demo",
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
    )
    assert "data" in status.stdout and "fresh" in status.stdout

    # --formula renders graphics.py and tests/test_model.py from the wheel's templates too.
    formula = subprocess.run(
        [mlm, "new", "demo2", "--formula", "score ~ hours + (1 | school)"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert formula.returncode == 0, formula.stderr
    assert "def group_effects(idata):" in (work / "demo2" / "graphics.py").read_text()
    tests = (work / "demo2" / "tests" / "test_model.py").read_text()
    assert 'COLUMNS = ["score", "hours", "school"]' in tests


def test_setup_script_stops_with_a_clear_message_when_python_is_older_than_3_12(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old = shutil.which("python3.11") or "/usr/bin/python3.11"
    if not Path(old).exists():
        pytest.skip("no Python 3.11 on this machine to play the old interpreter")
    for name in ("python3", "python"):
        (bin_dir / name).symlink_to(old)
    for tool in ("bash", "dirname", "env", "rm"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", copy / "scripts")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "nopyenv")}
    done = subprocess.run(
        [str(bin_dir / "bash"), str(copy / "scripts" / "dev.sh"), "test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "mlm needs Python 3.12 or newer" in done.stderr
    assert not (copy / ".venv").exists()
