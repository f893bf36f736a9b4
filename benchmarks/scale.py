"""Target 7 (issue 14, item 2): fit time as the data grows, mlm against a hand-written
nutpie script of the same model and draws, and bambi where it finishes.

    python benchmarks/scale.py [--quick] [--bambi-timeout S]

The project is `mlm new`'s (score ~ hours + (1 | school), non-centred, all data in
pm.Data), its CSV written by the template's simulate() with 1,000, 10,000, 100,000 and
1,000,000 rows (100 schools at 1,000 rows, 1,000 schools above). fit.py is cut down to
its pm.sample call, with the template's sampler settings (low-rank mass matrix,
target_accept 0.95) at 2 chains x (500 tune + 500 draws): this measures mlm's sampling
path, apart from the log-likelihood and posterior predictive (issue 14, item 1).

At each size, `mlm run fit --force` and `hand_nutpie.py` run interleaved (A B, B A, ...),
then `bambi_fit.py` once, stopped after --bambi-timeout seconds (default 480). Both nutpie
runs get the same seed, so they make the same draws and take the same number of gradient
evaluations: the ratio of their wall times is everything but the sampling itself. At the
largest size, `hand_nutpie.py --phases` then says where the time goes: compile, sampling,
gradient evaluations x time per evaluation, trace writing, and the log-likelihood and
posterior predictive per draw.

Writes benchmarks/results/scale.json and benchmarks/scale.png (--quick: 1,000 and 10,000
rows, fewer draws, results/scale.quick.json and results/scale.quick.png).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HERE, MLM, PYTHON, measure, save, table

SIZES = [(1_000, 100), (10_000, 1_000), (100_000, 1_000), (1_000_000, 1_000)]  # rows, schools
DRAWS, TUNE, CHAINS = 500, 500, 2
ROUNDS = {1_000: 3, 10_000: 2, 100_000: 2, 1_000_000: 1}

FIT_PY = '''"""Fit: pm.sample only (benchmarks/scale.py), with the template's sampler settings."""

import pymc as pm


def sample(model, project):
    with model:
        return pm.sample(
            draws={draws},
            tune={tune},
            chains={chains},
            target_accept=0.95,
            random_seed=project.seed,
            nuts_sampler_kwargs={{"adaptation": "low_rank"}},
        )
'''

SIMULATE = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("d", sys.argv[1] + "/data.py")
d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
rows, schools = int(sys.argv[2]), int(sys.argv[3])
frame = d.simulate(np.random.default_rng(1), n_schools=schools, pupils_per_school=rows // schools)
frame.to_csv(sys.argv[1] + "/data/scores.csv", index=False)
"""

READ_TRACE = """
import json, sys, xarray as xr
tree = xr.open_datatree(sys.argv[1])
post = tree["posterior"]
print(json.dumps({"sampling_time": float(post.attrs.get("sampling_time", "nan")),
                  "steps": int(tree["sample_stats"]["n_steps"].sum()),
                  "intercept": float(post["intercept"].mean())}))
"""


def main(quick: bool, bambi_timeout: float) -> None:
    sizes = SIZES[:2] if quick else SIZES
    draws, tune = (200, 200) if quick else (DRAWS, TUNE)
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-scale-"))
    subprocess.run([MLM, "new", "trial", "--no-git"], cwd=tmp, check=True, capture_output=True)
    proj = tmp / "trial"
    (proj / "fit.py").write_text(FIT_PY.format(draws=draws, tune=tune, chains=CHAINS))
    seed = int(
        next(
            line.split("=")[1]
            for line in (proj / "mlm.toml").read_text().splitlines()
            if line.startswith("seed")
        )
    )
    csv = proj / "data" / "scores.csv"
    hand = [
        PYTHON,
        str(HERE / "hand_nutpie.py"),
        str(csv),
        str(tmp / "hand.nc"),
        str(draws),
        str(tune),
        str(CHAINS),
        str(seed),
    ]
    mlm = [MLM, "-C", str(proj), "run", "fit", "--force"]

    def simulate(rows: int, schools: int) -> None:
        measure([PYTHON, "-c", SIMULATE, str(proj), str(rows), str(schools)])

    def trace_facts(path: Path) -> dict:
        return json.loads(
            measure([PYTHON, "-c", READ_TRACE, str(path)])["output"].strip().splitlines()[-1]
        )

    def mlm_trace() -> Path:
        key = json.loads((proj / ".mlm" / "fit" / "model" / "latest.json").read_text())["key"]
        return proj / ".mlm" / "fit" / "model" / key / "trace.nc"

    print("warming up (the compiled-model cache and PyTensor's cache)", flush=True)
    simulate(*sizes[0])
    measure(mlm)
    measure(hand)

    rows = []
    for n, schools in sizes:
        simulate(n, schools)
        runs = {"mlm": [], "hand": []}
        for round_ in range(1 if quick else ROUNDS[n]):
            for name in ("mlm", "hand") if round_ % 2 == 0 else ("hand", "mlm"):
                r = measure(mlm if name == "mlm" else hand)
                out = r.pop("output")
                if name == "mlm":
                    trace = mlm_trace()
                    manifest = json.loads((trace.parent / "manifest.json").read_text())
                    r["fit_py_s"] = manifest["wall_time_s"]
                    r.update(trace_facts(trace))
                    r["reused_compiled_model"] = "compiled model reused" in out
                else:
                    r.update(json.loads(out.strip().splitlines()[-1]))
                    r.update(trace_facts(tmp / "hand.nc"))
                    r["sampling_time"] = r["sampling"]  # nutpie's trace does not record it
                runs[name].append(r)
                print(
                    f"  {n:>9,} rows {name:>5}: {r['wall_s']:.1f} s wall, "
                    f"{r['sampling_time']:.1f} s sampling, {r['steps']} steps",
                    flush=True,
                )
        bambi = run_bambi(csv, draws, tune, seed, bambi_timeout)
        print(f"  {n:>9,} rows bambi: {bambi}", flush=True)
        mlm_s = statistics.median(r["wall_s"] for r in runs["mlm"])
        hand_s = statistics.median(r["wall_s"] for r in runs["hand"])
        rows.append(
            {
                "rows": n,
                "schools": schools,
                "runs": runs,
                "bambi": bambi,
                "mlm_s": mlm_s,
                "hand_s": hand_s,
                "ratio": mlm_s / hand_s,
                "load_average": os.getloadavg(),
            }
        )

    n, schools = sizes[-1]
    out = tmp / "phases.json"
    measure([*hand, "--phases", str(out)])
    phases = json.loads(out.read_text())
    phases["rows"] = n

    print(report(rows, phases, f"{CHAINS} chains x ({tune} tune + {draws} draws)"))
    figure(
        rows,
        HERE / "results" / "scale.quick.png" if quick else HERE / "scale.png",
        f"{CHAINS} chains x ({tune} tune + {draws} draws)",
    )
    save(
        "scale",
        {
            "quick": quick,
            "settings": {"draws": draws, "tune": tune, "chains": CHAINS},
            "rows": rows,
            "phases": phases,
        },
    )


def report(rows: list[dict], phases: dict, title: str) -> str:
    """The tables of RESULTS.md section 7."""

    def med(runs: list[dict], field) -> float:
        return statistics.median(field(r) for r in runs)

    def outside(r: dict) -> float:
        return r["wall_s"] - r["sampling_time"]

    lines = [
        f"## 7. Scale ({title})",
        table(
            [
                "rows",
                "schools",
                "mlm run fit s",
                "hand nutpie s",
                "mlm / hand",
                "sampling s (mlm, hand)",
                "outside sampling s (mlm, hand)",
                "bambi s",
                "gradient evaluations, draws only",
            ],
            [
                [
                    f"{r['rows']:,}",
                    r["schools"],
                    f"{r['mlm_s']:.1f}",
                    f"{r['hand_s']:.1f}",
                    f"{r['ratio']:.2f}",
                    f"{med(r['runs']['mlm'], lambda x: x['sampling_time']):.1f}, "
                    f"{med(r['runs']['hand'], lambda x: x['sampling_time']):.1f}",
                    f"{med(r['runs']['mlm'], outside):.1f}, {med(r['runs']['hand'], outside):.1f}",
                    bambi_cell(r["bambi"]),
                    f"{r['runs']['mlm'][0]['steps']:,}",
                ]
                for r in rows
            ],
        ),
    ]
    evals = phases["gradient_evaluations"] * phases["logp_grad_s"]
    lines += [
        "",
        f"where the time goes at {phases['rows']:,} rows (hand_nutpie.py --phases)",
        table(
            ["phase", "s"],
            [
                ["import pymc, nutpie", f"{phases['import']:.1f}"],
                ["read the CSV, build the model", f"{phases['read and build']:.1f}"],
                ["compile (nutpie's own)", f"{phases['compile']:.1f}"],
                ["sampling", f"{phases['sampling']:.1f}"],
                [
                    f"- gradient evaluations ({phases['gradient_evaluations']:,}) x "
                    f"{phases['logp_grad_s'] * 1e3:.2f} ms",
                    f"{evals:.1f}",
                ],
                ["write the trace", f"{phases['write trace']:.1f}"],
                ["log-likelihood, per draw", f"{phases['log_likelihood_s_per_draw']:.3f}"],
                [
                    "posterior predictive, per draw",
                    f"{phases['posterior_predictive_s_per_draw']:.3f}",
                ],
                ["writing, s per GB", f"{phases['write_s_per_gb']:.1f}"],
            ],
        ),
        f"sampling / (evaluations x evaluation time) = {phases['sampling'] / evals:.2f} "
        f"(2 chains on 2 cores: the limit is half the evaluations' time, "
        f"{phases['sampling'] / (evals / 2):.2f}x of it)",
    ]
    return "\n".join(lines)


def run_bambi(csv: Path, draws: int, tune: int, seed: int, timeout: float) -> dict:
    """bambi's wall time, or how long it ran before it was stopped."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [
                PYTHON,
                str(HERE / "bambi_fit.py"),
                str(csv),
                str(draws),
                str(tune),
                str(CHAINS),
                str(seed),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"wall_s": None, "stopped_after_s": timeout}
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"wall_s": None, "error": done.stderr[-500:]}
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def bambi_cell(bambi: dict) -> str:
    if bambi.get("wall_s") is not None:
        return f"{bambi['wall_s']:.1f}"
    if "stopped_after_s" in bambi:
        return f"> {bambi['stopped_after_s']:.0f} (stopped)"
    return "failed"


def figure(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["rows"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    axes[0].plot(n, [r["mlm_s"] for r in rows], "o-", label="mlm run fit")
    axes[0].plot(n, [r["hand_s"] for r in rows], "s--", label="hand-written nutpie")
    done = [r for r in rows if r["bambi"].get("wall_s") is not None]
    if done:
        axes[0].plot(
            [r["rows"] for r in done], [r["bambi"]["wall_s"] for r in done], "^:", label="bambi"
        )
    axes[0].set_ylabel("wall seconds")
    axes[0].set_yscale("log")
    axes[1].plot(n, [r["ratio"] for r in rows], "o-", label="mlm / hand")
    axes[1].axhline(1.1, color="grey", lw=0.8, ls="--", label="target 1.1")
    axes[1].set_ylabel("ratio")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("rows")
        ax.legend(frameon=False, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"template model, {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    if "--table" in sys.argv:  # the tables again, from results/scale.json
        saved = json.loads((HERE / "results" / "scale.json").read_text())
        settings = saved["settings"]
        print(
            report(
                saved["rows"],
                saved["phases"],
                f"{settings['chains']} chains x "
                f"({settings['tune']} tune + {settings['draws']} draws)",
            )
        )
        sys.exit()
    timeout = 480.0
    if "--bambi-timeout" in sys.argv:
        timeout = float(sys.argv[sys.argv.index("--bambi-timeout") + 1])
    main("--quick" in sys.argv, timeout)
