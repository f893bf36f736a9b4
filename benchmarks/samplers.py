"""Targets 4 and 6: ESS per second of the example's fit beside other samplers and forms,
and each sampler's distance to the limit (time per gradient evaluation).

    python benchmarks/samplers.py [--quick]

Each sampler runs in a fresh process (sampler_run.py), interleaved over rounds; medians
are reported. Samplers whose package is missing are skipped and said so.
Writes benchmarks/results/samplers.json.
"""

import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path

from harness import HERE, PYTHON, measure, save, table

SAMPLERS = {
    "nutpie": "example model.py, nutpie through mlm's compiled-model cache (the default fit)",
    "nutpie_uncached": "example model.py, nutpie compiling its callbacks anew",
    "pymc": "example model.py, PyMC's own NUTS",
    "numpyro": "example model.py, numpyro (JAX)",
    "design_matrix": "seed's design-matrix centered form, nutpie",
    "bambi": "bambi 0.21, same formula, its default sampler",
}
NEEDS = {"numpyro": "numpyro", "bambi": "bambi"}


def run(name: str, mode: str, quick: bool, tmp: Path) -> dict:
    out = tmp / f"{name}-{mode}.json"
    cmd = [PYTHON, str(HERE / "sampler_run.py"), name, mode, str(out)] + (["--quick"] * quick)
    measured = measure(cmd)
    result = json.loads(out.read_text())
    result["process_wall_s"] = measured["wall_s"]
    result["peak_mb"] = measured["peak_mb"]
    return result


def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-samplers-"))
    names = [n for n in SAMPLERS if importlib.util.find_spec(NEEDS.get(n, "pymc"))]
    skipped = [n for n in SAMPLERS if n not in names]
    ess = {n: [] for n in names}
    for name in ("nutpie", "design_matrix"):  # fill mlm's compiled-model cache, as one fit does
        run(name, "ess", True, tmp)
    for round_ in range(1 if quick else 2):
        for name in names if round_ % 2 == 0 else names[::-1]:
            r = run(name, "ess", quick, tmp)
            ess[name].append(r)
            print(f"  ess {name}: {r['wall_s']:.1f} s, min ESS {r['min_ess_bulk']:.0f}", flush=True)
    limit = {}
    for name in [n for n in names if n not in ("bambi", "nutpie_uncached")]:
        limit[name] = run(name, "limit", quick, tmp)
        print(f"  limit {name}: {limit[name]}", flush=True)

    def med(name, field):
        return statistics.median(r[field] for r in ess[name])

    rate = {n: statistics.median(r["min_ess_bulk"] / r["wall_s"] for r in ess[n]) for n in names}
    rows = []
    for n in names:
        sampling = [
            r["min_ess_bulk"] / r["sampling_time_s"] for r in ess[n] if r.get("sampling_time_s")
        ]
        rows.append(
            [
                n,
                SAMPLERS[n],
                f"{med(n, 'wall_s'):.1f}",
                f"{med(n, 'min_ess_bulk'):.0f}",
                ess[n][0]["worst"],
                f"{rate[n]:.0f}",
                f"{rate[n] / rate['bambi']:.2f}" if "bambi" in rate else "-",
                f"{statistics.median(sampling):.0f}" if sampling else "-",
            ]
        )
    print(
        "\n## 4. ESS per second (end to end: build + compile + sample)\n"
        + table(
            [
                "sampler",
                "what",
                "wall s",
                "min bulk ESS",
                "worst",
                "ESS/s",
                "x bambi",
                "ESS/s, sampling only",
            ],
            rows,
        )
    )
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    rows = [
        [
            n,
            f"{r['eval_us']:.1f}",
            r["gradient_evals"],
            f"{r['sampling_s']:.2f}",
            f"{r['gradient_evals'] * r['eval_us'] / 1e6:.2f}",
            f"{r['ratio']:.2f}",
        ]
        for n, r in limit.items()
    ]
    print(
        "\n## 6. Distance to the limit (1 chain, 1000 tune + 1000 draws)\n"
        + table(
            ["sampler", "logp+grad us", "gradient evals", "sampling s", "evals x eval s", "ratio"],
            rows,
        )
    )
    save("samplers", {"quick": quick, "ess": ess, "limit": limit, "skipped": skipped})


if __name__ == "__main__":
    main("--quick" in sys.argv)
