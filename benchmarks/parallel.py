"""Model variants fitted side by side (issue 14, item 4): `--workers 2` against in turn.

    python benchmarks/parallel.py [--quick]

A project made by `mlm new` with a second variant, models/wide.py (the slope's prior
wider), fitted with the template's own fit.py (4 chains x 1,000 draws after 1,000 tuning
steps, log-likelihood and posterior predictive). `mlm run fit --force`, each run a fresh
process, the compiled-model cache warm (an untimed fit with few draws first), the two
commands interleaved and reported as medians (one round only for the large data):

1. the template's data (120 pupils in 8 schools): fits of a second or two, where the
   start of the workers is most of the time;
2. data simulated by the template's simulate() with 200 schools of 10 pupils: fits of
   a minute or more. Target: >= 1.7x.

Each fit's own time ("sampled in X s", said by the fit stage) is kept too, to show what
the workers spend beside the fits (their start and imports).
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import PYTHON, measure, median, save, table

PRIORS = {"wide": "sigma=50"}


def make_project(parent: Path, size: tuple[int, int] | None, variants: list[str]) -> Path:
    """A new project with `variants` beside model.py; its data simulated at (schools,
    pupils per school) when `size` is given, else the template's own."""
    subprocess.run(
        [PYTHON, "-m", "mlm", "new", "trial", "--no-git"],
        cwd=parent,
        check=True,
        capture_output=True,
    )
    root = parent / "trial"
    if size is not None:
        simulate = (
            "import sys, numpy as np; sys.path.insert(0, '.'); import data; "
            f"data.simulate(np.random.default_rng(1), n_schools={size[0]}, "
            f"pupils_per_school={size[1]}).to_csv('data/scores.csv', index=False)"
        )
        subprocess.run([PYTHON, "-c", simulate], cwd=root, check=True)
    for variant in variants:
        subprocess.run(
            [PYTHON, "-m", "mlm", "generate", "model", variant],
            cwd=root,
            check=True,
            capture_output=True,
        )
        path = root / "models" / f"{variant}.py"
        text = path.read_text()
        changed = text.replace(
            'pm.Normal("slope", mu=0, sigma=5)', f'pm.Normal("slope", mu=0, {PRIORS[variant]})'
        )
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
            print(
                f"  {name}: {result['wall_s']:.1f} s (fits: "
                f"{', '.join(f'{t:.1f}' for t in result['fit_s'])})",
                flush=True,
            )
    return runs


def warm_up(root: Path) -> None:
    """Fill the compiled-model cache (and PyTensor's) for every variant, quickly: a fit
    with few draws compiles the same model, log-likelihood and predictive functions."""
    fit = root / "fit.py"
    template = fit.read_text()
    few = template.replace("draws=1000", "draws=20").replace("tune=1000", "tune=20")
    assert few != template, "the template's fit.py moved: update warm_up()"
    fit.write_text(few)
    try:
        measure(**mlm(root, "run", "fit"))
    finally:
        fit.write_text(template)


def mlm(root: Path, *args: str) -> dict:
    return {"cmd": [PYTHON, "-m", "mlm", *args], "cwd": root}


def main(quick: bool) -> None:
    sizes = {"template data, 120 rows": None, "200 schools x 10 pupils": (200, 10)}
    if quick:
        sizes = {"template data, 120 rows": None}
    rounds = 1 if quick else 2
    big_rounds = 1  # fits of minutes: one round is a long measurement already
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (name, size) in enumerate(sizes.items()):
            parent = Path(tmp) / str(n)
            parent.mkdir()
            root = make_project(parent, size, ["wide"])
            print(f"{name}: warming up (compiles each variant once)")
            warm_up(root)
            print(f"{name}: mlm run fit --force, in turn vs --workers 2")
            results[name] = compare(
                {
                    "in turn": mlm(root, "run", "fit", "--force"),
                    "--workers 2": mlm(root, "run", "fit", "--force", "--workers", "2"),
                },
                rounds if size is None else big_rounds,
            )

    rows, speedups = [], {}
    for what, runs in results.items():
        one, two = median(runs["in turn"], "wall_s"), median(runs["--workers 2"], "wall_s")
        speedups[what] = one / two
        fits_one = statistics.median(sum(r["fit_s"]) for r in runs["in turn"])
        fits_two = statistics.median(max(r["fit_s"]) for r in runs["--workers 2"])
        rows.append(
            [
                what,
                f"{one:.1f}",
                f"{two:.1f}",
                f"**{one / two:.2f}x**",
                f"{fits_one:.1f}",
                f"{fits_two:.1f}",
            ]
        )
    print()
    print(
        table(
            [
                "data",
                "in turn, wall s (median)",
                "--workers 2, wall s (median)",
                "speedup",
                "in turn: both fits s",
                "--workers 2: longer fit s",
            ],
            rows,
        )
    )
    save(
        "parallel",
        {"quick": quick, "rounds": rounds, "sizes": sizes, "runs": results, "speedup": speedups},
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
