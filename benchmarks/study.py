"""Simulation studies (issue 8): per-replicate cost and the speedup from 1 to 2 workers.

    python benchmarks/study.py [--quick]

1. Per-replicate cost of a study (in-process, compiled model reused across replicates),
   as a share of one cold single fit of the same trial with the same settings, each in a
   fresh process (imports and compilation included). Target: <= 0.3x.
2. Wall time of the same study on a local Dask cluster with 1 worker and with 2 workers
   (one per core on this machine), for 100 and for 300 replicates. Target: speedup
   >= 1.7x. Each worker pays a fixed cost (start, imports, one compile) that more workers
   do not divide, so the speedup grows with the study's size.

Every run works on a copy of example_project in a temporary folder; each study clears the
study cache first, so every replicate is really fitted.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import PYTHON, interleave, median, project_copy, save, table

HERE = Path(__file__).resolve().parent


def run(kind: str, root: Path, *args: str) -> dict:
    return {"cmd": [PYTHON, str(HERE / "study_run.py"), kind, str(root), *args], "cwd": root}


def main(quick: bool) -> None:
    replicates = 30 if quick else 100
    rounds = 1 if quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        root = project_copy(Path(tmp) / "trial")
        print("warming up (fills PyTensor's on-disk cache)")
        interleave({"warm-up": run("cold", root)}, 1)

        print(f"1. one cold fit vs an in-process study of {replicates} replicates")
        cost = interleave(
            {
                "cold fit": run("cold", root),
                "study, in-process": run("study", root, str(replicates), "0"),
            },
            rounds,
        )
        sizes = [replicates] if quick else [replicates, 3 * replicates]
        speeds = {}
        for size in sizes:
            print(f"2. a study of {size} on a local Dask cluster: 1 vs 2 workers")
            speeds[size] = interleave(
                {
                    "1 worker": run("study", root, str(size), "1"),
                    "2 workers": run("study", root, str(size), "2"),
                },
                rounds,
            )

    cold = median(cost["cold fit"], "wall_s")
    study = median(cost["study, in-process"], "wall_s")
    per_replicate = study / replicates
    print()
    print(
        table(
            ["what", "wall s (median)", "per replicate s", "ratio to a cold fit"],
            [
                ["one cold fit (fresh process)", f"{cold:.2f}", f"{cold:.2f}", "1.00"],
                [
                    f"study of {replicates}, in-process",
                    f"{study:.2f}",
                    f"{per_replicate:.3f}",
                    f"{per_replicate / cold:.3f}",
                ],
            ],
        )
    )
    print()
    rows, speedup = [], {}
    for size, speed in speeds.items():
        one, two = median(speed["1 worker"], "wall_s"), median(speed["2 workers"], "wall_s")
        speedup[size] = one / two
        rows.append([str(size), f"{one:.2f}", f"{two:.2f}", f"{one / two:.2f}"])
    print(
        table(
            ["replicates", "1 worker, wall s (median)", "2 workers, wall s (median)", "speedup"],
            rows,
        )
    )
    save(
        "study",
        {
            "quick": quick,
            "replicates": replicates,
            "cost": {k: [r["wall_s"] for r in v] for k, v in cost.items()},
            "speed": {
                size: {k: [r["wall_s"] for r in v] for k, v in speed.items()}
                for size, speed in speeds.items()
            },
            "per_replicate_ratio": per_replicate / cold,
            "speedup": speedup,
        },
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
