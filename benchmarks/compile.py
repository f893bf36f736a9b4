"""Target 5: compile cost. Cold, warm and data-only refits through mlm, where the time of
a fit goes, and what reusing a compiled model (nutpie's with_data) would save.

    python benchmarks/compile.py [--quick] [--large-only]

cold: `mlm run fit` with an empty PyTensor cache directory (PYTENSOR_FLAGS
base_compiledir, as after a fresh install; mlm's compiled models live there too); warm:
`--force` again with that cache; data-only: one value of the CSV changed, then `mlm run
fit`; and the last two again with `[fit] compile_cache = false`. Interleaved, medians.
Writes benchmarks/results/compile.json.

Then the same at scale (issue 14, item 3), on `mlm new`'s project with 200,000 rows and
1,000 schools and scale.py's sampling-only fit.py at 2 chains x (250 tune + 250 draws):
cold, a data-only change, 10,000 more rows (the same schools), and one school fewer (a
new number of group levels). Writes results/compile_large.json; --large-only runs only
this part.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import HERE, MLM, PYTHON, measure, project_copy, save, table


def main(quick: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-compile-"))
    proj = project_copy(tmp / "trial")
    csv = proj / "data" / "partially_clustered.csv"
    original = csv.read_text()
    compiledir = tmp / "pytensor"
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
    mlm = [MLM, "-C", str(proj), "run", "fit", "--model", "model"]
    runs = {
        "cold (empty PyTensor cache)": [],
        "warm (--force)": [],
        "data-only change": [],
        "warm, compile_cache = false": [],
        "data-only change, compile_cache = false": [],
    }
    toml = proj / "mlm.toml"
    settings = toml.read_text()
    edits = 0
    for _ in range(1 if quick else 2):
        shutil.rmtree(compiledir, ignore_errors=True)
        r = measure([*mlm, "--force"], env=env)
        runs["cold (empty PyTensor cache)"].append(r)
        r = measure([*mlm, "--force"], env=env)
        runs["warm (--force)"].append(r)
        edits += 1
        lines = original.splitlines()
        head, first = lines[0], lines[1].rsplit(",", 1)
        lines[1] = f"{first[0]},{float(first[1]) + 0.001 * edits:.4f}"
        csv.write_text("\n".join([head, *lines[1:]]) + "\n")
        r = measure(mlm, env=env)
        assert "sampled" in r["output"], r["output"][-500:]
        runs["data-only change"].append(r)
        # The same two fits without mlm's compiled-model cache (nutpie recompiles its
        # callbacks in every process; PyTensor's own disk cache still works).
        toml.write_text(settings + "\n[fit]\ncompile_cache = false\n")
        runs["warm, compile_cache = false"].append(measure([*mlm, "--force"], env=env))
        edits += 1
        lines[1] = f"{first[0]},{float(first[1]) + 0.001 * edits:.4f}"
        csv.write_text("\n".join([head, *lines[1:]]) + "\n")
        r = measure(mlm, env=env)
        assert "sampled" in r["output"], r["output"][-500:]
        runs["data-only change, compile_cache = false"].append(r)
        toml.write_text(settings)
        for name, rs in runs.items():
            print(f"  {name}: {rs[-1]['wall_s']:.1f} s", flush=True)
    csv.write_text(original)
    for rs in runs.values():
        for r in rs:
            r.pop("output")

    def run(*args):
        out = tmp / "out.json"
        measure([PYTHON, str(HERE / "compile_run.py"), *args, str(out)])
        return json.loads(out.read_text())

    phases = run("phases")
    reuse = run("reuse")
    cache = {"compile_pymc_model()": [], "compile_pymc_model(cache=True)": []}
    for _ in range(1 if quick else 2):
        cache["compile_pymc_model()"].append(run("compile")["compile_s"])
        cache["compile_pymc_model(cache=True)"].append(run("compile", "--cache")["compile_s"])

    cold = statistics.median(r["wall_s"] for r in runs["cold (empty PyTensor cache)"])
    print(
        "\n## 5. Compile cost through mlm\n"
        + table(
            ["fit", "wall s (median)", "x cold"],
            [
                [
                    n,
                    f"{statistics.median(r['wall_s'] for r in rs):.1f}",
                    f"{statistics.median(r['wall_s'] for r in rs) / cold:.2f}",
                ]
                for n, rs in runs.items()
            ],
        )
    )
    print(
        "\nphases of the example's fit (one process, warm PyTensor cache)\n"
        + table(["phase", "s"], [[k, v] for k, v in phases.items()])
    )
    print("\nreuse in one process\n" + table(["fit", "s"], [[k, v] for k, v in reuse.items()]))
    print(
        "\nnumba cache=True\n"
        + table(
            ["call", "s (median)"], [[k, f"{statistics.median(v):.2f}"] for k, v in cache.items()]
        )
    )
    save("compile", {"quick": quick, "mlm": runs, "phases": phases, "reuse": reuse, "cache": cache})


LARGE_ROWS, LARGE_SCHOOLS = 200_000, 1_000
LARGE_DRAWS = 250  # and as many tuning steps: each fit at 200,000 rows is minutes already

ADD_ROWS = """
import sys, numpy as np, pandas as pd
csv, extra = sys.argv[1], int(sys.argv[2])
frame = pd.read_csv(csv)
more = frame.sample(extra, random_state=2).assign(
    score=lambda f: (f["score"] + np.random.default_rng(2).normal(0, 8, extra)).round(1))
more["pupil"] = np.arange(len(frame) + 1, len(frame) + extra + 1)
pd.concat([frame, more]).to_csv(csv, index=False)
"""

DROP_SCHOOL = """
import sys, pandas as pd
frame = pd.read_csv(sys.argv[1])
frame[frame["school"] != frame["school"].iloc[-1]].to_csv(sys.argv[1], index=False)
"""


def large(quick: bool) -> None:
    """Cold, data-only, more rows and one group level fewer, at 200,000 rows."""
    import subprocess

    from scale import CHAINS, FIT_PY, SIMULATE

    rows = LARGE_ROWS // 10 if quick else LARGE_ROWS
    tmp = Path(tempfile.mkdtemp(prefix="mlm-bench-compile-large-"))
    subprocess.run([MLM, "new", "trial", "--no-git"], cwd=tmp, check=True, capture_output=True)
    proj = tmp / "trial"
    (proj / "fit.py").write_text(FIT_PY.format(draws=LARGE_DRAWS, tune=LARGE_DRAWS, chains=CHAINS))
    csv = proj / "data" / "scores.csv"
    compiledir = tmp / "pytensor"
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
    mlm = [MLM, "-C", str(proj), "run", "fit"]
    measure([PYTHON, "-c", SIMULATE, str(proj), str(rows), str(LARGE_SCHOOLS)])

    def fit(name: str, *extra: str) -> dict:
        r = measure([*mlm, *extra], env=env)
        out = r.pop("output")
        assert "sampled" in out, out[-500:]
        r["reused_compiled_model"] = "compiled model reused" in out
        key = json.loads((proj / ".mlm/fit/model/latest.json").read_text())["key"]
        manifest = json.loads((proj / ".mlm/fit/model" / key / "manifest.json").read_text())
        r["fit_py_s"] = manifest["wall_time_s"]
        print(
            f"  {name}: {r['wall_s']:.1f} s (fit.py {r['fit_py_s']:.1f} s), "
            f"reused: {r['reused_compiled_model']}",
            flush=True,
        )
        return r

    results = {"cold (empty PyTensor cache)": fit("cold", "--force")}
    text = csv.read_text().splitlines()
    head, last = text[-1].rsplit(",", 1)
    text[-1] = f"{head},{float(last) + 0.5:.1f}"
    csv.write_text("\n".join(text) + "\n")
    results["data-only change"] = fit("data-only change")
    measure([PYTHON, "-c", ADD_ROWS, str(csv), str(rows // 20)])
    results[f"{rows // 20:,} more rows"] = fit("more rows")
    measure([PYTHON, "-c", DROP_SCHOOL, str(csv)])
    results["one school fewer"] = fit("one school fewer")
    cold = results["cold (empty PyTensor cache)"]["wall_s"]
    print(
        f"\n## compile cost at {rows:,} rows\n"
        + table(
            ["fit", "wall s", "fit.py s", "x cold", "compiled model reused"],
            [
                [
                    n,
                    f"{r['wall_s']:.1f}",
                    f"{r['fit_py_s']:.1f}",
                    f"{r['wall_s'] / cold:.2f}",
                    r["reused_compiled_model"],
                ]
                for n, r in results.items()
            ],
        )
    )
    save(
        "compile_large",
        {
            "quick": quick,
            "rows": rows,
            "schools": LARGE_SCHOOLS,
            "settings": {"draws": LARGE_DRAWS, "tune": LARGE_DRAWS, "chains": CHAINS},
            "fits": results,
        },
    )


if __name__ == "__main__":
    if "--large-only" not in sys.argv:
        main("--quick" in sys.argv)
    large("--quick" in sys.argv)
