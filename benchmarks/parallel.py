"""Model variants fitted side by side (issue 14, item 4): `--workers 2` against in turn.

    python benchmarks/parallel.py [--quick]

A project made by `mlm new`, its data simulated larger (S schools x P pupils, with the
template's simulate()) so that one fit with the template's fit.py (4 chains x 1,000 draws,
log-likelihood and posterior predictive) takes tens of seconds, and model variants that
differ in a prior (models/wide.py, models/wider.py). Each command is a fresh process,
the compiled-model cache warm (one untimed run first), interleaved and reported as
medians:

1. `mlm run fit --force` with 2 variants: in turn (the default) vs `--workers 2`.
   Target: >= 1.7x.
2. The same with 3 variants on 2 workers (a third fit queues behind the first two).
3. A whole `mlm run` (fits, figures, comparison) of 2 variants after `mlm clean --yes`:
   in turn vs `--workers 2` (figures and the comparison are drawn in the `mlm run`
   process either way).

Each fit's own time ("sampled in X s", said by the fit stage) is kept too, to show what
the workers spend beside the fits (their start and imports).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import PYTHON, measure, median, save, table

PRIORS = {"wide": "sigma=50", "wider": "sigma=500"}


def make_project(parent: Path, schools: int, pupils: int, variants: list[str]) -> Path:
    subprocess.run([PYTHON, "-m", "mlm", "new", "trial", "--no-git"], cwd=parent, check=True,
                   capture_output=True)
    root = parent / "trial"
    simulate = (
        "import sys, numpy as np; sys.path.insert(0, '.'); import data; "
        f"data.simulate(np.random.default_rng(1), n_schools={schools}, "
        f"pupils_per_school={pupils}).to_csv('data/scores.csv', index=False)"
    )
    subprocess.run([PYTHON, "-c", simulate], cwd=root, check=True)
    for variant in variants:
        subprocess.run([PYTHON, "-m", "mlm", "generate", "model", variant], cwd=root,
                       check=True, capture_output=True)
        path = root / "models" / f"{variant}.py"
        text = path.read_text()
        changed = text.replace('pm.Normal("slope", mu=0, sigma=5)',
                               f'pm.Normal("slope", mu=0, {PRIORS[variant]})')
        assert changed != text, "the template's slope prior moved: update PRIORS"
        path.write_text(changed)
    return root


def fit_times(output: str) -> list[float]:
    """Each fit's "sampled in X s", as the fit stage said it."""
    return [float(x) for x in re.findall(r"sampled in ([0-9.]+) s", output)]


def compare(commands: dict[str, dict], rounds: int, before=None) -> dict[str, list[dict]]:
    """harness.interleave, keeping each run's fit times from its output."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            if before:
                before()
            result = measure(**commands[name])
            result["fit_s"] = fit_times(result.pop("output"))
            runs[name].append(result)
            print(f"  {name}: {result['wall_s']:.1f} s (fits: "
                  f"{', '.join(f'{t:.1f}' for t in result['fit_s'])})", flush=True)
    return runs


def mlm(root: Path, *args: str) -> dict:
    return {"cmd": [PYTHON, "-m", "mlm", *args], "cwd": root}


def main(quick: bool) -> None:
    schools, pupils = (20, 40) if quick else (50, 60)
    rounds = 1 if quick else 2
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, variants in (("2 variants", ["wide"]), ("3 variants", ["wide", "wider"])):
            parent = Path(tmp) / name.replace(" ", "-")
            parent.mkdir()
            root = make_project(parent, schools, pupils, variants)
            print(f"{name}: warming up (compiles each variant once)")
            measure(**mlm(root, "run", "fit"))
            print(f"{name}: mlm run fit --force, in turn vs --workers 2")
            results[f"fit, {name}"] = compare(
                {"in turn": mlm(root, "run", "fit", "--force"),
                 "--workers 2": mlm(root, "run", "fit", "--force", "--workers", "2")},
                rounds if name == "2 variants" else 1,
            )
            if name == "2 variants":
                print(f"{name}: mlm run after mlm clean --yes, in turn vs --workers 2")

                def clean(root=root) -> None:
                    subprocess.run([PYTHON, "-m", "mlm", "clean", "--yes"], cwd=root,
                                   check=True, capture_output=True)
                    shutil.rmtree(root / "figures", ignore_errors=True)

                results[f"whole run, {name}"] = compare(
                    {"in turn": mlm(root, "run"),
                     "--workers 2": mlm(root, "run", "--workers", "2")},
                    rounds, before=clean,
                )

    rows, speedups = [], {}
    for what, runs in results.items():
        one, two = median(runs["in turn"], "wall_s"), median(runs["--workers 2"], "wall_s")
        speedups[what] = one / two
        fits_one = sum(runs["in turn"][0]["fit_s"])
        fits_two = max(runs["--workers 2"][0]["fit_s"], default=0)
        rows.append([what, f"{one:.1f}", f"{two:.1f}", f"**{one / two:.2f}x**",
                     f"{fits_one:.1f}", f"{fits_two:.1f}"])
    print()
    print(table(["command", "in turn, wall s (median)", "--workers 2, wall s (median)",
                 "speedup", "in turn: sum of fits s", "--workers 2: longest fit s"], rows))
    save("parallel", {
        "quick": quick,
        "rows": schools * pupils,
        "schools": schools,
        "rounds": rounds,
        "runs": results,
        "speedup": speedups,
    })


if __name__ == "__main__":
    main("--quick" in sys.argv)
