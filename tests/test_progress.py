"""Progress on long work (mlm/progress.py, and PyMC's own bars while fit.py runs): drawn,
with the time left, on a terminal; absent, control codes and all, everywhere else."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import render, run_mlm

# Long work as the framework does it: a bar with a total, fed by advance().
WORK = """
import time
from mlm.progress import task

with task("crunching numbers", total=8, delay=0) as advance:
    for _ in range(8):
        time.sleep(0.15)
        advance()
print("done")
"""


def in_terminal(args: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    """Everything `args` wrote to its terminal (a pseudo-terminal for stdout and stderr)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120", "TERM": "xterm"}
    child = subprocess.Popen(
        args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            child.kill()
            raise TimeoutError(b"".join(chunks).decode(errors="replace")[-2000:])
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout)
    os.close(leader)
    assert child.returncode == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def drawn(text: str) -> bool:
    """Whether anything was drawn live: a live display moves the cursor (escape codes)."""
    return "\x1b[" in text


def test_a_bar_with_the_time_left_is_drawn_on_a_terminal():
    text = in_terminal([sys.executable, "-c", WORK])
    assert "crunching numbers" in text
    assert "left" in text and "elapsed" in text
    assert drawn(text)
    assert "done" in text


def test_nothing_is_drawn_when_output_is_not_a_terminal():
    done = subprocess.run([sys.executable, "-c", WORK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "done\n"
    assert done.stderr == ""


@pytest.mark.slow
def test_a_fit_piped_to_a_log_has_no_progress_bars(tmp_path: Path):
    root = render(tmp_path)
    done = run_mlm("run", "fit", cwd=root)
    assert done.returncode == 0, done.stderr
    log = done.stdout + done.stderr
    assert "sampled in" in log
    # PyMC's bars (nutpie's table, the log-likelihood's and the posterior predictive's)
    # would leave their last state here: no bar, no table, no control code.
    assert not drawn(log), log
    for trace_of_a_bar in ("Computing ...", "Sampling ...", "draws/s", "Remaining", "━━━"):
        assert trace_of_a_bar not in log, log


@pytest.mark.slow
def test_a_fit_on_a_terminal_shows_sampling_and_post_processing_with_the_time_left(
    tmp_path: Path,
):
    root = render(tmp_path)
    text = in_terminal([sys.executable, "-m", "mlm", "run", "fit"], cwd=root)
    assert "sampled in" in text
    assert drawn(text)
    assert "Remaining" in text  # nutpie's table, through pm.sample
    assert "Sampling ..." in text  # the posterior predictive (fit.py stores no log-likelihood)


@pytest.mark.slow
def test_variants_fitted_side_by_side_show_a_bar_of_the_fits_done(
    two_variant_template: Path, tmp_path: Path
):
    import shutil

    root = Path(
        shutil.copytree(
            two_variant_template, tmp_path / "demo", ignore=shutil.ignore_patterns(".mlm")
        )
    )
    command = [sys.executable, "-m", "mlm", "run", "fit", "--workers", "2"]
    text = in_terminal(command, cwd=root)
    assert "fitting 2 variants side by side" in text
    assert "left" in text and "elapsed" in text and drawn(text)
    # The workers' messages still come through, each labelled with its variant.
    assert "fit [model]" in text and "fit [wide]" in text and text.count("sampled in") == 2
    # Piped, no bar.
    log = run_mlm("run", "fit", "--force", "--workers", "2", cwd=root)
    assert log.returncode == 0, log.stderr
    assert "side by side" in log.stderr and "\x1b[" not in log.stderr


# PSIS-LOO of 20,000 rows from 400 made-up posterior draws, 500 rows at a time (mlm/loo.py).
LOO = """
import numpy as np, pymc as pm, xarray as xr
from mlm import loo

rng = np.random.default_rng(1)
x = rng.normal(size=20_000)
with pm.Model(coords={"obs": range(x.size)}) as model:
    x_ = pm.Data("x", x, dims="obs")
    y_ = pm.Data("y_obs", 1 + 2 * x + rng.normal(size=x.size), dims="obs")
    a, b = pm.Normal("a"), pm.Normal("b")
    sigma = pm.HalfNormal("sigma")
    pm.Normal("y", a + b * x_, sigma, observed=y_, dims="obs")
draws = {"a": 1.0, "b": 2.0, "sigma": 1.0}
posterior = xr.Dataset(
    {k: (("chain", "draw"), v + 0.01 * rng.normal(size=(2, 200))) for k, v in draws.items()}
)
points = loo.pointwise(model, posterior, rows_per_chunk=500)
print("rows", points.sizes["obs"])
"""


def test_chunked_loo_shows_a_bar_of_the_rows_done():
    text = in_terminal([sys.executable, "-c", LOO])
    assert "PSIS-LOO of 20,000 rows" in text and "left" in text and drawn(text)
    assert "rows 20000" in text
    piped = subprocess.run([sys.executable, "-c", LOO], capture_output=True, text=True, timeout=600)
    assert piped.returncode == 0, piped.stderr
    assert "PSIS-LOO" not in piped.stderr and "\x1b[" not in piped.stderr
