"""Crash testing, in the spirit of SQLite's: kill `mlm run` at many moments spread over one
fit and its writes, and after each kill check that every command reads the store the same
way, that the earlier traces are served intact, and that no partial trace is ever read."""

from __future__ import annotations

import gc
import signal
import time
from pathlib import Path

import pytest

from mlm import MlmError, Project

from test_reliability import start_mlm

KILLS = 24
INTERRUPTS = 10
INTERRUPT_BOUND_S = 2.0


def _next_fit(root: Path, n: int) -> None:
    """A new fit key for run `n` (one more draw), so that a kill can leave it half-made."""
    fit = root / "fit.py"
    text = fit.read_text()
    start = text.index("draws=") + len("draws=")
    end = text.index(",", start)
    fit.write_text(text[:start] + str(200 + n) + text[end:])


def _timed_run(root: Path) -> float:
    start = time.monotonic()
    proc = start_mlm(root, "run", "fit")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return time.monotonic() - start


def _moments(duration: float, count: int) -> list[float]:
    """`count` moments over the run: most spread evenly, a quarter near its end (the writes)."""
    even = [duration * (0.05 + 0.9 * i / (count - count // 4)) for i in range(count - count // 4)]
    late = [duration * (0.85 + 0.15 * i / (count // 4)) for i in range(count // 4)]
    return sorted(even + late)


def _agree(root: Path, complete: set[str]) -> str:
    """Status, the plan, check and summary read the store alike; earlier traces load whole.
    Returns the state of the fit."""
    project = Project(root)
    fit = project.status()[2]
    planned = [r.stage for r in project.plan("fit")]
    if fit.fresh:
        assert "fit" not in planned
        assert project.check(), "check finds no rows for a fresh trace"
        table, record, fresh = project.summary()
        assert fresh and record.key == fit.key and len(table)
    else:
        assert "fit" in planned, (fit, planned)
        with pytest.raises(MlmError, match="no fresh trace to check"):
            project.check()
        if project.store.latest_key("model"):  # summary falls back to the latest trace
            _, record, fresh = project.summary()
            assert not fresh and project.store.has_trace("model", record.key)
    for key in complete:  # every trace stored before stays whole (checksum verified)
        assert project.store.load_trace("model", key)["posterior"].sizes["draw"] >= 200
    for key in project.store.trace_keys("model"):  # and nothing partial is ever listed
        project.store.verify_trace("model", key)
    return fit.state


@pytest.mark.slow
def test_sigkill_at_many_moments_never_leaves_a_partial_or_disagreeing_store(fitted_dir):
    complete = {Project(fitted_dir).fit_key()}
    _next_fit(fitted_dir, 1)
    duration = _timed_run(fitted_dir)
    complete.add(Project(fitted_dir).fit_key())
    states = []
    for n, moment in enumerate(_moments(duration, KILLS), start=2):
        _next_fit(fitted_dir, n)
        proc = start_mlm(fitted_dir, "run", "fit")
        time.sleep(moment)
        proc.kill()
        proc.wait(timeout=60)
        states.append(_agree(fitted_dir, complete))
        if states[-1] == "fresh":
            complete.add(Project(fitted_dir).fit_key())
    # The moments reached both sides of the rename: some kills left the new fit unmade.
    assert "stale" in states or "missing" in states, states
    # The next run after all of them sweeps every half-written folder and finishes the fit.
    _timed_run(fitted_dir)
    folder = Project(fitted_dir).store.paths.fit_dir("model")
    assert not list(folder.glob(".tmp-*")) and not list(folder.glob(".old-*"))
    assert _agree(fitted_dir, complete) == "fresh"


@pytest.mark.slow
def test_sigint_at_many_moments_stops_fast_and_keeps_nothing_partial(fitted_dir):
    complete = {Project(fitted_dir).fit_key()}
    _next_fit(fitted_dir, 1)
    duration = _timed_run(fitted_dir)
    complete.add(Project(fitted_dir).fit_key())
    waits = []
    for n, moment in enumerate(_moments(duration, INTERRUPTS), start=2):
        _next_fit(fitted_dir, n)
        proc = start_mlm(fitted_dir, "run", "fit")
        time.sleep(moment)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        waits.append(time.monotonic() - sent)
        # 130 from mlm's handler; -SIGINT if it came while Python was still importing mlm;
        # 0 if the command was done before the signal.
        assert proc.returncode in (0, 130, -signal.SIGINT), err
        if proc.returncode == 130:
            assert "interrupted" in err and "Traceback" not in err, err
        state = _agree(fitted_dir, complete)
        # An exit 0 always leaves the new trace; an interrupt leaves it only when it came
        # after the trace was committed (say, while the check note was printed).
        if proc.returncode == 0:
            assert state == "fresh", (state, err)
        elif state == "fresh":
            assert "sampling" in err, err
        if state == "fresh":
            complete.add(Project(fitted_dir).fit_key())
    assert max(waits) < INTERRUPT_BOUND_S, waits


def test_a_ctrl_c_before_a_command_starts_still_says_interrupted(monkeypatch, capsys):
    """typer turns a KeyboardInterrupt outside a command's handled() (while it parses the
    command line, as a command starts) into exit 130 without a word; mlm says why. The
    sigint test above met it on a loaded machine: exit 130 and an empty stderr."""
    import sys

    import typer

    import mlm.cli as cli

    app = typer.Typer()

    @app.command()
    def status() -> None:  # a Ctrl-C outside handled(), as typer meets it
        raise KeyboardInterrupt

    @app.command()
    def other() -> None:
        pass

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_interrupted_said", False)
    monkeypatch.setattr(sys, "argv", ["mlm", "status"])
    # main() ends the process: it ignores SIGINT and freezes the GC on its way out. Both
    # are undone here, or every later subprocess of this test run would inherit SIGINT
    # ignored (a Ctrl-C test of `mlm run --workers` lost its interrupt that way in CI).
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main()
    finally:
        signal.signal(signal.SIGINT, handler)
        gc.unfreeze()
    assert exit_.value.code == 130
    assert "interrupted" in capsys.readouterr().err
