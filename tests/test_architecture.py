"""The package's one-way layers, as pinned by the import-linter contracts in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).with_name("lint-imports")
    command = [str(tool)] if tool.exists() else [shutil.which("lint-imports") or "lint-imports"]
    env = {**os.environ, "PYTHONPATH": str(root / "framework")}
    return subprocess.run(
        [*command, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_layer_imports_only_the_layers_below_it():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "one-way layers KEPT" in result.stdout
    assert "no import cycles among sibling modules KEPT" in result.stdout
    assert "BROKEN" not in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path):
    """The contracts can fail: the store importing the project (the old circle) is caught."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "framework", copy / "framework", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    records = copy / "framework" / "mlm" / "store" / "records.py"
    records.write_text(records.read_text() + "\nfrom mlm.project import Project  # noqa\n")
    result = _lint_imports(copy)
    assert result.returncode != 0
    assert "one-way layers BROKEN" in result.stdout
    assert "mlm.store.records -> mlm.project" in result.stdout
