"""Shared fixtures: small real projects rendered from the template, fitted with few draws."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO.parent / "shared" / "seed"

# CI (.ci/run sets CI=true) must run every test: a tool, file or package it lacks is a
# failure that names what is missing, not a skip nobody reads. Locally such a test skips.
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> None:
    """Skip (fail under CI) because `what` -- a tool, file or package -- is not here."""
    if IN_CI:
        pytest.fail(f"missing in CI: {what}; CI must run every test", pytrace=False)
    pytest.skip(f"missing: {what}")


def needs_tool(*names: str) -> str:
    """The path of the first of `names` on PATH (skips, or fails under CI, if none is)."""
    for name in names:
        if found := shutil.which(name):
            return found
    missing(f"the program {' or '.join(repr(n) for n in names)} is not on PATH")
    raise AssertionError  # unreachable: missing() skips or fails


def needs_file(path: Path) -> Path:
    """`path`, which must exist (skips, or fails under CI, if it does not)."""
    if not path.is_file():
        missing(f"the file {path}")
    return path


def needs_module(name: str):
    """The imported module `name` (skips, or fails under CI, if it cannot be imported)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        problem = str(exc)
    missing(f"the Python package {name!r} ({problem})")


def pytest_configure(config):
    """Tests send Ctrl-C (SIGINT) to the mlm processes they start, which inherit this
    process's SIGINT: started with it ignored (`pytest &` in a script), they would keep
    ignoring it, as mlm means them to, and those tests would fail for nothing."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _sigint_left_as_found():
    """A test that leaves this process's SIGINT handler changed fails: every later
    subprocess would inherit it (SIGINT ignored made a Ctrl-C test lose its interrupt in
    CI, far from the test that ignored it)."""
    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    assert after is before, f"the test left SIGINT's handler changed: {before!r} -> {after!r}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI, any skip (a skipif marker, pytest.importorskip, pytest.skip) is a failure
    that says what was skipped and why: nothing is skipped silently there."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("MLM_UPDATE_GOLDEN")
        and "golden" in item.name
        and report.when == "call"
        and report.passed
    ):
        # The golden file was just written from this run's own output: the comparison
        # proved nothing. Review the rewritten files, then run again without the variable.
        report.outcome = "failed"
        report.longrepr = (
            "MLM_UPDATE_GOLDEN is set: this test rewrote its golden file from its own output, "
            "so it cannot pass; review `git diff tests/golden/` and rerun without it"
        )
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must run every test: {reason}"


# Few draws keep the suite fast; otherwise as the template's own fit.py: no stored
# log-likelihood (compare computes LOO) and posterior predictive draws for 100 draws.
FAST_FIT = '''"""Sampling, with few draws for the tests."""

import pymc as pm


def sample(model, project):
    """Posterior draws, and posterior predictive draws for 100 of them."""
    with model:
        idata = pm.sample(draws=200, tune=200, chains=2, random_seed=project.seed)
        thinned = idata["posterior"].to_dataset().isel(draw=slice(None, None, 4))
        predictive = pm.sample_posterior_predictive(thinned, random_seed=project.seed)
        idata["posterior_predictive"] = predictive["posterior_predictive"]
    return idata
'''


def render(parent: Path, name: str = "demo") -> Path:
    """A new project from the template, with a fast fit.py."""
    from mlm.template import new_project

    root = new_project(name, parent)
    (root / "fit.py").write_text(FAST_FIT)
    return root


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A freshly rendered project that has never been run."""
    return render(tmp_path)


@pytest.fixture(scope="session")
def fitted_template(tmp_path_factory) -> Path:
    """A project run end to end once per session; copy it before changing it."""
    from mlm import Project

    root = render(tmp_path_factory.mktemp("fitted"))
    Project(root).run()
    return root


@pytest.fixture
def fitted_dir(fitted_template: Path, tmp_path: Path) -> Path:
    """A private copy of a fully fitted project (its cache included)."""

    target = tmp_path / "demo"
    shutil.copytree(fitted_template, target)
    return target


@pytest.fixture(scope="session")
def two_variant_template(tmp_path_factory) -> Path:
    """The template project plus models/wide.py (a wider slope prior), fully run once."""
    from mlm import Project

    root = render(tmp_path_factory.mktemp("variants"))
    project = Project(root)
    path = project.new_variant("wide")
    path.write_text(
        path.read_text().replace(
            'pm.Normal("slope", mu=0, sigma=5)', 'pm.Normal("slope", mu=0, sigma=50)'
        )
    )
    project.run()
    return root


@pytest.fixture
def variants_dir(two_variant_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(two_variant_template, target)
    return target


def model_body(source: str) -> str:
    """A generated model.py from its family line on: what a Stata command and its lme4
    formula must write alike (the docstrings above it quote each as written)."""
    return source[source.index("\nfamily ") :]


def run_mlm(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the real `mlm` command line in a subprocess."""
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "mlm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cache_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under .mlm/ with its size and modification time (lock files aside)."""
    cache = root / ".mlm"
    if not cache.exists():
        return {}
    return {
        p.relative_to(cache).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in cache.rglob("*")
        if p.is_file() and "locks" not in p.relative_to(cache).parts
    }


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a table mlm printed, as lists of cells: rich's box characters on a
    terminal, plain text piped (its header's words mark where the left-aligned columns
    start)."""
    if "│" in text:
        return [
            [cell.strip() for cell in line.split("│")]
            for line in text.splitlines()
            if "│" in line and "┃" not in line
        ]
    header, *body = [line for line in text.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    ends = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)] for line in body]


def status_rows(text: str) -> dict:
    """`mlm status`'s rows as {stage: state} for one model, {(variant, stage): state} for
    several (variant "" for data and compare), as mlm prints a variant column only then."""
    rows = table_rows(text)
    if rows and len(rows[0]) == 4:
        return {(row[0], row[1]): row[2] for row in rows}
    return {row[0]: row[1] for row in rows}
