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


# A Python 3.11 played by the real interpreter: `-c CODE` runs CODE with sys.version_info
# and sys.version set to 3.11.9, `--version` says 3.11.9; anything else (`-m venv`) is
# recorded in calls.log and refused, since a 3.11 must never get that far.
FAKE_PYTHON_311 = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
    --version|-V) echo "Python 3.11.9"; exit 0 ;;
    -c) shift; code=$1; shift
        exec "{real}" -c 'import sys
sys.version_info = (3, 11, 9, "final", 0)
sys.version = "3.11.9 (main) [GCC]"
code = sys.argv.pop(1)
exec(compile(code, "<string>", "exec"))' "$code" "$@" ;;
esac
exit 3
"""


def test_setup_script_stops_with_a_clear_message_when_python_is_older_than_3_12(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in ("python3", "python"):
        fake = bin_dir / name
        fake.write_text(FAKE_PYTHON_311.format(log=log, real=sys.executable))
        fake.chmod(0o755)
    # The fake answers like a 3.11 would.
    said = subprocess.run(
        [str(bin_dir / "python3"), "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
        capture_output=True,
        text=True,
    )
    assert said.stdout.strip() == "False", said.stderr
    log.unlink()
    for tool in ("bash", "dirname", "env", "rm", "sh"):
        found = shutil.which(tool)
        assert found, f"{tool} is missing on this machine"
        if not (bin_dir / tool).exists():
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
    assert done.returncode == 1, done.stderr
    assert "mlm needs Python 3.12 or newer" in done.stderr
    assert not (copy / ".venv").exists()
    # The script asked the fake its version, and did nothing else with it.
    calls = log.read_text().splitlines()
    assert calls and all(call.startswith("-c import sys;") for call in calls), calls
