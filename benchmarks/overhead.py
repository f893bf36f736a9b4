"""Targets 1-3: mlm's own cost beside the same work done without it.

    python benchmarks/overhead.py [--quick]

1. `mlm run fit --force --model model` vs hand_fit.py (same model, sampler, seed, saving).
2. `mlm run graphics --force --model model` with a fresh cached trace vs bare_graphics.py
   (loads the same NetCDF, draws the same figures); and which libraries mlm imported.
3. `mlm --help` and `mlm status` vs `python -c pass`.

Runs on a copy of example_project in a temporary folder; commands are interleaved and
the medians reported. Writes benchmarks/results/overhead.json.

    python benchmarks/overhead.py --candidate DIR

adds `mlm (candidate)` rows to 1 and 2: the same mlm command run with PYTHONPATH=DIR, a
copy of framework/ holding a proposed change, to measure a fix before making it.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from harness import HERE, MLM, PYTHON, interleave, measure, median, project_copy, save, table


def ratio_rows(runs: dict, base: str) -> list[list]:
    rows = []
    for name, rs in runs.items():
        wall, peak = median(rs, "wall_s"), median(rs, "peak_mb")
        rows.append(
            [
                name,
                f"{wall:.2f}",
                f"{wall / median(runs[base], 'wall_s'):.2f}",
                f"{peak:.0f}",
                f"{peak / median(runs[base], 'peak_mb'):.2f}",
            ]
        )
    return rows


def main(quick: bool, candidate: str | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-"))
    proj = project_copy(tmp / "trial")
    csv = proj / "data" / "partially_clustered.csv"
    hand_trace = tmp / "hand.nc"
    mlm = [MLM, "-C", str(proj)]
    print("warming up (first fit fills PyTensor's on-disk cache)", flush=True)
    measure([*mlm, "run", "fit", "--model", "model"])
    measure([PYTHON, str(HERE / "hand_fit.py"), str(csv), str(hand_trace)])

    print("1. fit: mlm vs hand-written script", flush=True)
    fit_commands = {
        "mlm run fit --force": {"cmd": [*mlm, "run", "fit", "--force", "--model", "model"]},
        "hand_fit.py": {"cmd": [PYTHON, str(HERE / "hand_fit.py"), str(csv), str(hand_trace)]},
        "hand_fit.py --compile-cache": {
            "cmd": [PYTHON, str(HERE / "hand_fit.py"), str(csv), str(hand_trace), "--compile-cache"]
        },
    }
    graphics_commands = {
        "mlm run graphics --force": {
            "cmd": [*mlm, "run", "graphics", "--force", "--model", "model"]
        },
    }
    if candidate:
        env = {**os.environ, "PYTHONPATH": candidate}
        fit_commands["mlm run fit --force (candidate)"] = {
            **fit_commands["mlm run fit --force"],
            "env": env,
        }
        graphics_commands["mlm run graphics --force (candidate)"] = {
            **graphics_commands["mlm run graphics --force"],
            "env": env,
        }
    fit = interleave(fit_commands, 2 if quick else 4)

    print("2. graphics from the cached trace: mlm vs bare script", flush=True)
    key = json.loads((proj / ".mlm" / "fit" / "model" / "latest.json").read_text())["key"]
    trace = proj / ".mlm" / "fit" / "model" / key / "trace.nc"
    graphics_commands["bare_graphics.py"] = {
        "cmd": [
            PYTHON,
            str(HERE / "bare_graphics.py"),
            str(proj),
            str(trace),
            str(tmp / "bare_figures"),
        ]
    }
    graphics = interleave(graphics_commands, 3 if quick else 5)
    probe = tmp / "probe.json"
    measure(
        [
            PYTHON,
            str(HERE / "probe_modules.py"),
            str(probe),
            "-C",
            str(proj),
            "run",
            "graphics",
            "--force",
            "--model",
            "model",
        ]
    )
    graphics_imports = json.loads(probe.read_text())

    print("3. CLI start", flush=True)
    cli = interleave(
        {
            "python -c pass": {"cmd": [PYTHON, "-c", "pass"]},
            "mlm --help": {"cmd": [MLM, "--help"]},
            "mlm status": {"cmd": [*mlm, "status"]},
        },
        5 if quick else 9,
    )
    measure([PYTHON, str(HERE / "probe_modules.py"), str(probe), "-C", str(proj), "status"])
    status_imports = json.loads(probe.read_text())
    measure([PYTHON, str(HERE / "probe_modules.py"), str(probe), "--help"])
    help_imports = json.loads(probe.read_text())

    header = ["command", "wall s (median)", "ratio", "peak RSS MB (median)", "ratio"]
    print("\n## 1. Fit\n" + table(header, ratio_rows(fit, "hand_fit.py")))
    print("\n## 2. Graphics\n" + table(header, ratio_rows(graphics, "bare_graphics.py")))
    print(f"\nmlm run graphics imported: {graphics_imports}")
    base = median(cli["python -c pass"], "wall_s")
    print(
        "\n## 3. CLI start\n"
        + table(
            ["command", "wall s (median)", "minus python -c pass", "peak RSS MB"],
            [
                [
                    n,
                    f"{median(r, 'wall_s'):.3f}",
                    f"{median(r, 'wall_s') - base:+.3f}",
                    f"{median(r, 'peak_mb'):.0f}",
                ]
                for n, r in cli.items()
            ],
        )
    )
    print(f"\nmlm status imported: {status_imports}\nmlm --help imported: {help_imports}")
    save(
        "overhead",
        {
            "quick": quick,
            "candidate": candidate,
            "fit": fit,
            "graphics": graphics,
            "cli": cli,
            "imports": {
                "run graphics": graphics_imports,
                "status": status_imports,
                "--help": help_imports,
            },
        },
    )


if __name__ == "__main__":
    chosen = sys.argv[sys.argv.index("--candidate") + 1] if "--candidate" in sys.argv else None
    main("--quick" in sys.argv, chosen)
